// The EMSDP codec in one include: header, IEs, commands, counters, protection, sessions.
//
// Layers (each usable alone):
//   header.h   Header / HeaderPrefix, encode/decode for counter schemes n = 0..3
//   ie.h       tags, size rules, typed IEs (Imsi BCD, PLMN, UE/HSE configuration, ...)
//   message.h  the eight commands as structs (Body variant); decodeBody() applies section 3.3,
//              A3, A4 steps 1-4, A19, A20 and returns a FormatError (cause + named detail);
//              encodeBody() writes ascending TLVs
//   counter.h  TxCounter, CpRxCounter (strict), UpRxCounter (window): candidate() then commit()
//   protect.h  stateless sealCp / sealUp / macMatches (EIA2 after EEA2) for given COUNTs
//   channel.h  SecureChannel: one end of a session, keyed once, four counters, the section 4
//              receive order; failures are a Verdict (drop + DropReason, or reject + Cause)
//   receive.h  route() for a fresh datagram; Session Request (HSE), Session Start (UE) and
//              KID-0 Message Reject entry points and encoders
//   outcome.h  Cause, DropReason (stable snake_case names for metrics), Verdict
//
// HSE daemon, per datagram:
//   route(d, Side::network)
//     sessionRequest    -> parseSessionRequest(d): reject -> encodeUnprotectedReject(0, ...);
//                          then A4 steps 5-11; resumption: verifyResumptionMac(d, KSess0 CP-int)
//     unprotectedReject -> find the attempt by Session ID (unknown_session), check the source
//                          address (A14), parseUnprotectedReject(d)
//     session           -> find the session (unknown_session), channel.openCp(d) or
//                          channel.openUp(d, plain); Verdict::reject -> channel.sealCp(
//                          MessageReject{cause}); verdict.authenticated or success confirms the
//                          session and updates the UE's address (A9, A17)
//   Sending: channel.sealCp(SessionStart{...}) first (n = 0, CP-DL 0), cache its octets for
//   identical resends; channel.sealCp(...) / sealUp(...) afterwards; when exhaustionDue():
//   sealExhaustionTerminate() and delete the session (A1).
// UE library: encodeSessionRequest / encodeResumptionRequest; on a datagram, route(d, Side::ue);
//   while waiting, parseSessionStart(d) -> AKA and keys -> SecureChannel::create(
//   channelConfigFor(Side::ue, header, body), keys) -> acceptSessionStart(d) -> compare
//   requestChecksum() of the request sent; afterwards openCp / openUp / sealCp / sealUp.
#pragma once

#include "emsdp/channel.h"
#include "emsdp/counter.h"
#include "emsdp/header.h"
#include "emsdp/ie.h"
#include "emsdp/message.h"
#include "emsdp/outcome.h"
#include "emsdp/protect.h"
#include "emsdp/receive.h"
