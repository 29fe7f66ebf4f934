// best-vusim's YAML configuration (config/vusim.yaml documents every key). The file holds K and
// OP/OPc: keep it mode 0600; a group- or world-readable file is reported as a warning.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/secure.h"
#include "sim/vusim/card.h"
#include "sim/vusim/sqn_array.h"

namespace best::sim::vusim {

struct VusimConfig {
    std::string vpcdHost = "127.0.0.1";
    std::uint16_t vpcdPort = 35963;  // vpcd's default (0x8C7B); the project's configs use others
    CardProfile card;
    SubscriberK k;
    Opc opc;              // given, or computed from OP at load time
    SqnArray initialSqn;  // ind_bits, delta and initial_seq_ms: used when the state file is new
    std::string stateFile;
    std::vector<std::string> warnings;  // for the caller to log (e.g. file mode)
};

Result<VusimConfig> parseVusimConfig(std::string_view yamlText, std::string_view origin);
// Reads and parses `path`; adds a warning when the file is readable by group or others.
Result<VusimConfig> loadVusimConfig(const std::string& path);

}  // namespace best::sim::vusim
