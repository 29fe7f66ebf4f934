#include "csv_import.h"

#include <array>
#include <string_view>

#include "cli.h"
#include "common/hex.h"
#include "store/validate.h"

namespace best::hsectl {

namespace {

enum class Column { imsi, k, kWrapped, op, opc, amf, sqnStart, extId, eas, indBits };

struct ColumnName {
    std::string_view name;
    Column column;
};
constexpr std::array<ColumnName, 10> kColumns{{
    {"imsi", Column::imsi},
    {"k", Column::k},
    {"k_wrapped", Column::kWrapped},
    {"op", Column::op},
    {"opc", Column::opc},
    {"amf", Column::amf},
    {"sqn_start", Column::sqnStart},
    {"ext_id", Column::extId},
    {"eas", Column::eas},
    {"ind_bits", Column::indBits},
}};

std::string_view trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos)
        return {};
    const auto e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

std::vector<std::string_view> splitFields(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (;;) {
        const auto comma = line.find(',', start);
        if (comma == std::string_view::npos) {
            out.push_back(trim(line.substr(start)));
            return out;
        }
        out.push_back(trim(line.substr(start, comma - start)));
        start = comma + 1;
    }
}

Error atLine(std::size_t line, const std::string& imsi, const std::string& message) {
    std::string where = "line " + std::to_string(line);
    if (!imsi.empty())
        where += " (IMSI " + imsi + ")";
    return Error{ErrorDomain::generic, static_cast<int>(cli::CliErrc::input),
                 where + ": " + message};
}

}  // namespace

Result<CsvImport> parseImportCsv(ByteView bytes, const CsvDefaults& defaults) {
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    CsvImport out;
    std::vector<Column> header;
    std::array<int, kColumns.size()> index{};
    index.fill(-1);
    std::size_t lineNo = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        if (nl == std::string_view::npos)
            nl = text.size();
        const std::string_view line = trim(text.substr(pos, nl - pos));
        pos = nl + 1;
        ++lineNo;
        if (line.empty() || line.front() == '#')
            continue;
        const auto fields = splitFields(line);
        if (header.empty()) {
            for (const auto f : fields) {
                bool known = false;
                for (std::size_t c = 0; c < kColumns.size(); ++c) {
                    if (f == kColumns[c].name) {
                        if (index[c] >= 0) {
                            return makeError(
                                atLine(lineNo, {}, "column '" + std::string(f) + "' twice"));
                        }
                        index[c] = static_cast<int>(header.size());
                        header.push_back(kColumns[c].column);
                        known = true;
                    }
                }
                if (!known) {
                    return makeError(atLine(lineNo, {},
                                            "unknown column '" + std::string(f) +
                                                "' (columns: imsi, k or k_wrapped, op or opc, amf, "
                                                "sqn_start, ext_id, eas, ind_bits)"));
                }
            }
            const auto has = [&](Column c) { return index[static_cast<std::size_t>(c)] >= 0; };
            if (!has(Column::imsi))
                return makeError(atLine(lineNo, {}, "the header has no 'imsi' column"));
            if (!has(Column::k) && !has(Column::kWrapped))
                return makeError(atLine(lineNo, {}, "the header has no 'k' or 'k_wrapped' column"));
            if (!has(Column::op) && !has(Column::opc)) {
                return makeError(atLine(lineNo, {},
                                        "the header has no 'op' or 'opc' column (say which one "
                                        "the file holds: OPc = OP xor E_K(OP))"));
            }
            if (!has(Column::amf) && !defaults.amf) {
                return makeError(
                    atLine(lineNo, {}, "the header has no 'amf' column and --amf is not given"));
            }
            continue;
        }
        if (fields.size() != header.size()) {
            return makeError(atLine(lineNo, {},
                                    "expected " + std::to_string(header.size()) + " fields, got " +
                                        std::to_string(fields.size())));
        }
        const auto field = [&](Column c) -> std::string_view {
            const int i = index[static_cast<std::size_t>(c)];
            return i < 0 ? std::string_view{} : fields[static_cast<std::size_t>(i)];
        };
        ProvisionRow row;
        row.line = lineNo;
        const std::string imsi(field(Column::imsi));
        if (auto r = store::checkImsi(imsi); !r)
            return makeError(atLine(lineNo, {}, r.error().message));
        row.record.imsi = imsi;
        const auto fail = [&](const std::string& m) { return makeError(atLine(lineNo, imsi, m)); };

        const std::string_view k = field(Column::k);
        const std::string_view kw = field(Column::kWrapped);
        if (k.empty() == kw.empty())
            return fail("give exactly one of k and k_wrapped");
        if (!k.empty()) {
            SubscriberK key;
            if (auto r = fromHexInto(k, "K", key.mutableView()); !r)
                return fail(r.error().message);
            row.keys.k = key;
        } else {
            auto b = fromHex(kw, "k_wrapped");
            if (!b)
                return fail(b.error().message);
            if (b->size() < 24 || b->size() > 40)
                return fail("k_wrapped: expected 24 to 40 octets, got " +
                            std::to_string(b->size()));
            row.keys.kWrapped = std::move(*b);
            out.anyWrappedK = true;
        }
        const std::string_view op = field(Column::op);
        const std::string_view opc = field(Column::opc);
        if (op.empty() == opc.empty()) {
            return fail(
                "give exactly one of op and opc (OP is the operator variant, OPc = OP xor "
                "E_K(OP))");
        }
        if (!opc.empty()) {
            row.keys.opKind = store::OpKind::opc;
            if (auto r = fromHexInto(opc, "OPc", row.keys.opc.mutableView()); !r)
                return fail(r.error().message);
        } else {
            row.keys.opKind = store::OpKind::op;
            if (auto r = fromHexInto(op, "OP", row.keys.op.mutableView()); !r)
                return fail(r.error().message);
        }
        if (const auto amf = field(Column::amf); !amf.empty()) {
            auto a = cli::hexArray<2>(amf, "AMF");
            if (!a)
                return fail(a.error().message);
            row.record.amf = *a;
        } else if (defaults.amf) {
            row.record.amf = *defaults.amf;
        } else {
            return fail("no AMF (empty amf field and no --amf)");
        }
        row.record.indBits = defaults.indBits;
        if (const auto ib = field(Column::indBits); !ib.empty()) {
            auto n = cli::parseUnsigned(ib, "ind_bits", 0, store::kMaxIndBits);
            if (!n)
                return fail(n.error().message);
            row.record.indBits = static_cast<std::uint8_t>(*n);
        }
        std::string_view start = field(Column::sqnStart);
        if (start.empty() && defaults.sqnStart)
            start = *defaults.sqnStart;
        if (!start.empty()) {
            auto seq = parseSeq(start, row.record.indBits, "sqn_start");
            if (!seq)
                return fail(seq.error().message);
            row.seqHe = *seq - 1;
        }
        if (const auto ext = field(Column::extId); !ext.empty()) {
            if (auto r = store::checkUtf8Id(ext, "external UE id", 255); !r)
                return fail(r.error().message);
            row.record.externalUeId = std::string(ext);
        }
        if (const auto eas = field(Column::eas); !eas.empty()) {
            row.record.allowedEas = splitList(eas);
            for (const auto& id : row.record.allowedEas) {
                if (auto r = store::checkUtf8Id(id, "EAS Id", 64); !r)
                    return fail(r.error().message);
            }
        }
        out.rows.push_back(std::move(row));
    }
    if (header.empty())
        return makeError(cli::CliErrc::input, "the import file has no header line");
    if (out.rows.empty())
        return makeError(cli::CliErrc::input, "the import file has no subscriber lines");
    return out;
}

}  // namespace best::hsectl
