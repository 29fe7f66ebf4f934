// best-ue's configuration (config/ue.yaml documents every key): where the HSE is, who the UE is,
// what it offers, where its state lives, and which USIM answers AUTHENTICATE.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/secure.h"
#include "crypto/key_hierarchy.h"

namespace best::ueagent {

enum class AgentErrc { config = 1, usim, control, state, session };
inline ErrorDomain errorDomainOf(AgentErrc e) {
    return e == AgentErrc::config ? ErrorDomain::config : ErrorDomain::generic;
}

enum class UsimSource : std::uint8_t { pcsc, software };

struct UsimConfig {
    UsimSource source = UsimSource::pcsc;
    // pcsc
    std::string reader;  // glob or substring of the reader name
    std::optional<std::string> iccid;
    std::optional<std::string> pinFile;
    std::chrono::milliseconds cardTimeout{5000};
    // software (tests and demos): K and OPc in this file, SEQ_MS in sqnStateFile
    SubscriberK k;
    Opc opc;
    std::string sqnStateFile;
};

struct AgentConfig {
    std::string hseAddress = "127.0.0.1";
    std::uint16_t hsePort = 7163;
    std::string hseId;  // expected HSE Id; empty: any
    std::string easId;
    std::optional<std::string> imsi;  // empty: read EF.IMSI from the USIM
    std::optional<crypto::PlmnId> servingNetwork;
    std::vector<crypto::KeyAgreement> keyAgreements{crypto::KeyAgreement::fiveG};
    bool confidentiality = false;
    bool keySetsStorable = true;
    std::string stateFile;
    std::string controlSocket;
    UsimConfig usim;
    std::string logLevel = "notice";
    std::vector<std::string> warnings;
};

// Reads and validates a YAML file; errors name the file, line and column.
Result<AgentConfig> loadAgentConfig(const std::string& path);
// The same from text (tests); `origin` names it in messages.
Result<AgentConfig> parseAgentConfig(const std::string& text, const std::string& origin);

// "001" + "01" -> 00 f1 10 (TS 24.008 encoding).
Result<crypto::PlmnId> plmnFromMccMnc(const std::string& mcc, const std::string& mnc);

std::string keyAgreementName(crypto::KeyAgreement ka);

}  // namespace best::ueagent
