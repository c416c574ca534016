#pragma once
/// @file kafka_util.hpp
/// @brief librdkafka helpers shared by the consumer and the producer (io/ internals).

#include <librdkafka/rdkafka.h>

#include <map>
#include <stdexcept>
#include <string>

namespace trove::io::detail {

/// @brief A librdkafka configuration from properties; a rejected one throws with the key, the
/// value and librdkafka's explanation, prefixed by the config section it came from.
inline rd_kafka_conf_t* make_conf(const std::map<std::string, std::string>& properties,
                                  const std::string& section) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::invalid_argument(section + "." + key + ": got \"" + value + "\": " + errstr);
    }
  }
  return conf;
}

}  // namespace trove::io::detail
