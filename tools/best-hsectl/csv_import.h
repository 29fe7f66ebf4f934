// The import file of `best-hsectl subscriber import` (docs/operations.md has the format): CSV
// with a header line naming the columns, one subscriber per line, '#' comments and blank lines
// ignored, no quoting. K, OP and OPc go straight from the file buffer into wiped secret types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "provisioning.h"
#include "store/records.h"

namespace best::hsectl {

// Values for columns a file leaves out (or leaves empty), from the command line.
struct CsvDefaults {
    std::optional<store::AmfBytes> amf;
    std::optional<std::string> sqnStart;
    std::uint8_t indBits = store::kDefaultIndBits;
};

struct CsvImport {
    std::vector<ProvisionRow> rows;
    bool anyWrappedK = false;  // some row has k_wrapped (needs a transport key)
};

// Parses and checks every row (IMSI, hex, lengths, exactly one of k/k_wrapped and of op/opc,
// AMF, SQN start, IND bits, ids). Errors (CliErrc::input) name the line.
Result<CsvImport> parseImportCsv(ByteView text, const CsvDefaults& defaults);

}  // namespace best::hsectl
