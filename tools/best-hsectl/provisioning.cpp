#include "provisioning.h"

#include <algorithm>
#include <set>

#include "cli.h"
#include "context.h"
#include "store/sqn.h"

namespace best::hsectl {

namespace {

constexpr std::size_t kSealChunk = 500;

Error prefixed(const Error& e, const std::string& prefix) {
    Error out = e;
    out.message = prefix + e.message;
    return out;
}

}  // namespace

std::string rowName(const ProvisionRow& row) {
    if (row.line == 0)
        return "IMSI " + row.record.imsi;
    return "line " + std::to_string(row.line) + " (IMSI " + row.record.imsi + ")";
}

Result<void> sealRow(hsm::VaultOps& ops, ProvisionRow& row, const TransportKey* transport) {
    const std::string& imsi = row.record.imsi;
    const hsm::BlobBinding kb = kRow(imsi);
    const hsm::BlobBinding ob = opcRow(imsi);
    Result<Bytes> k = [&]() -> Result<Bytes> {
        if (row.keys.k)
            return ops.importK(*row.keys.k, kb);
        if (transport == nullptr) {
            return makeError(cli::CliErrc::usage,
                             "a transport-wrapped K needs --transport-key LABEL");
        }
        return ops.importKWrapped(row.keys.kWrapped, transport->label, transport->mechanism, kb);
    }();
    if (!k)
        return makeError(k.error());
    Result<Bytes> opc = row.keys.opKind == store::OpKind::opc
                            ? ops.sealOpc(row.keys.opc, ob)
                            : ops.sealOpcFromOp(row.keys.op, hsm::KeyRef{*k, kb}, ob);
    if (!opc)
        return makeError(opc.error());
    row.record.k = toStored(*k);
    row.record.op = toStored(*opc);
    row.record.opKind = store::OpKind::opc;
    return {};
}

Result<void> checkRows(store::Store& st, const std::vector<ProvisionRow>& rows) {
    std::set<std::string, std::less<>> imsis;
    std::set<std::string, std::less<>> extIds;
    for (const auto& row : rows) {
        if (!imsis.insert(row.record.imsi).second) {
            return makeError(cli::CliErrc::input,
                             rowName(row) + ": IMSI " + row.record.imsi + " appears twice");
        }
        if (row.record.externalUeId && !extIds.insert(*row.record.externalUeId).second) {
            return makeError(cli::CliErrc::input, rowName(row) + ": external UE id '" +
                                                      *row.record.externalUeId + "' appears twice");
        }
    }
    auto eas = st.listEas();
    if (!eas)
        return makeError(eas.error());
    std::set<std::string, std::less<>> registry;
    for (const auto& e : *eas)
        registry.insert(e.easId);
    auto count = st.countSubscribers();
    if (!count)
        return makeError(count.error());
    for (const auto& row : rows) {
        for (const auto& id : row.record.allowedEas) {
            if (registry.count(id) == 0) {
                return makeError(store::StoreErrc::not_found,
                                 rowName(row) + ": EAS '" + id + "' is not in the EAS registry");
            }
        }
        if (*count == 0)
            continue;
        auto existing = st.getSubscriber(row.record.imsi);
        if (existing) {
            return makeError(store::StoreErrc::duplicate,
                             rowName(row) + ": subscriber " + row.record.imsi + " already exists");
        }
        if (existing.error().code != static_cast<int>(store::StoreErrc::not_found))
            return makeError(existing.error());
        if (row.record.externalUeId) {
            auto other = st.findSubscriberByExternalId(*row.record.externalUeId);
            if (other) {
                return makeError(store::StoreErrc::duplicate,
                                 rowName(row) + ": external UE id '" + *row.record.externalUeId +
                                     "' is already used by subscriber " + other->imsi);
            }
            if (other.error().code != static_cast<int>(store::StoreErrc::not_found))
                return makeError(other.error());
        }
    }
    return {};
}

Result<std::size_t> importRows(hsm::KeyVault& vault, store::Store& st,
                               std::vector<ProvisionRow>& rows, const TransportKey* transport,
                               const Progress& progress) {
    if (auto r = checkRows(st, rows); !r)
        return makeError(r.error());
    for (std::size_t begin = 0; begin < rows.size(); begin += kSealChunk) {
        const std::size_t end = std::min(rows.size(), begin + kSealChunk);
        // One job per chunk: the secrets are handled on the vault worker's locked stack.
        auto r = vault.run([&](hsm::VaultOps& ops) -> Result<void> {
            for (std::size_t i = begin; i < end; ++i) {
                if (auto s = sealRow(ops, rows[i], transport); !s)
                    return makeError(prefixed(s.error(), rowName(rows[i]) + ": "));
            }
            return {};
        });
        if (!r)
            return makeError(r.error());
        if (progress)
            progress(end, rows.size());
    }
    std::vector<store::SubscriberRecord> records;
    std::vector<std::uint64_t> seqs;
    records.reserve(rows.size());
    seqs.reserve(rows.size());
    for (const auto& row : rows) {
        records.push_back(row.record);
        seqs.push_back(row.seqHe);
    }
    auto n = st.importSubscribers(records, seqs);
    if (!n) {
        // The store names its rows "row N (IMSI ...)", counted from 1; name the file line.
        Error e = n.error();
        const std::string& m = e.message;
        if (m.rfind("row ", 0) == 0) {
            std::size_t i = 4;
            std::size_t index = 0;
            while (i < m.size() && m[i] >= '0' && m[i] <= '9')
                index = index * 10 + static_cast<std::size_t>(m[i++] - '0');
            if (index >= 1 && index <= rows.size() && rows[index - 1].line != 0) {
                std::string rest = m.substr(i);
                if (rest.rfind(" (IMSI ", 0) == 0)
                    rest = rest.substr(rest.find(')') + 1);
                e.message = rowName(rows[index - 1]) + rest;
            }
        }
        return makeError(std::move(e));
    }
    return *n;
}

Result<std::uint64_t> parseSeq(std::string_view text, std::uint8_t indBits, std::string_view what) {
    const std::uint64_t max = store::maxSeq(indBits);
    if (text.rfind("sqn:", 0) == 0) {
        auto sqn = cli::hexArray<6>(text.substr(4), std::string(what) + " SQN");
        if (!sqn)
            return makeError(sqn.error());
        const std::uint64_t value = store::sqnFromBytes(*sqn);
        const std::uint64_t seq = store::seqOf(value, indBits);
        if (seq == 0) {
            return makeError(cli::CliErrc::usage, std::string(what) + ": SQN " +
                                                      std::string(text.substr(4)) +
                                                      " has SEQ 0 with " + std::to_string(indBits) +
                                                      " IND bits; the first SEQ handed out is 1");
        }
        return seq;
    }
    if (text.find_first_not_of("0123456789") != std::string_view::npos) {
        return makeError(cli::CliErrc::usage,
                         std::string(what) +
                             " must be a SEQ (decimal) or sqn:HEX (6 octets), got '" +
                             std::string(text) + "'");
    }
    return cli::parseUnsigned(text, std::string(what) + " SEQ", 1, max);
}

std::vector<std::string> splitList(std::string_view text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t end = text.find_first_of(",;", start);
        if (end == std::string_view::npos)
            end = text.size();
        std::string_view item = text.substr(start, end - start);
        const auto b = item.find_first_not_of(" \t");
        if (b != std::string_view::npos) {
            const auto e = item.find_last_not_of(" \t");
            out.emplace_back(item.substr(b, e - b + 1));
        }
        start = end + 1;
    }
    return out;
}

}  // namespace best::hsectl
