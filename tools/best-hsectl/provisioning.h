// Provisioning through the KeyVault: K is wrapped in the HSM (imported from a file, or unwrapped
// from an operator's transport-key blob without ever reaching the host), OPc is sealed under the
// token's data key (given, or computed as OP xor E_K(OP) inside the HSM), and only the blobs
// reach the store. Shared by `subscriber add`, `subscriber import` and the import benchmark.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secure.h"
#include "hsm/key_vault.h"
#include "store/store.h"

namespace best::hsectl {

// The secrets of one subscriber as the operator gave them.
struct KeyInput {
    std::optional<SubscriberK> k;               // clear K (from a file or a CSV), or
    Bytes kWrapped;                             // K wrapped under a transport key on the token
    store::OpKind opKind = store::OpKind::opc;  // which of op/opc was given
    Op op;
    Opc opc;
};

struct ProvisionRow {
    std::size_t line = 0;            // line of the import file; 0 for `subscriber add`
    store::SubscriberRecord record;  // everything but the blobs
    std::uint64_t seqHe = 0;         // the first vector gets SEQ seqHe + 1
    KeyInput keys;
};

// The operator's transport key (a CKA_UNWRAP key on the token, found by label).
struct TransportKey {
    std::string label;
    hsm::WrapMechanism mechanism = hsm::WrapMechanism::aesKeyWrap;
};

// "line 7 (IMSI 001010000000001)" or "IMSI 001010000000001".
std::string rowName(const ProvisionRow& row);

// Wraps K and seals OPc for the row; fills record.k, record.op and record.opKind (always OPc:
// an OP is turned into OPc inside the HSM and never stored).
Result<void> sealRow(hsm::VaultOps& ops, ProvisionRow& row, const TransportKey* transport);

// Checks the rows against each other and the store before any HSM work: IMSIs and external
// UE ids unique and not yet provisioned, every allowed EAS in the registry.
Result<void> checkRows(store::Store& st, const std::vector<ProvisionRow>& rows);

using Progress = std::function<void(std::size_t sealed, std::size_t total)>;

// checkRows, then every row sealed through the vault (progress after each chunk), then one
// store transaction: all rows or none. Returns the number of rows imported.
Result<std::size_t> importRows(hsm::KeyVault& vault, store::Store& st,
                               std::vector<ProvisionRow>& rows, const TransportKey* transport,
                               const Progress& progress);

// The SEQ a "--sqn-start"/"--next" value asks for: "N" (decimal, the SEQ itself, >= 1) or
// "sqn:HEX" (the 6-octet SQN; its SEQ part, for a subscriber with `indBits` IND bits).
Result<std::uint64_t> parseSeq(std::string_view text, std::uint8_t indBits, std::string_view what);

// "a,b;c" -> {"a","b","c"} (empty items dropped).
std::vector<std::string> splitList(std::string_view text);

}  // namespace best::hsectl
