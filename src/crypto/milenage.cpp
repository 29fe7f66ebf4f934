// Milenage, 3GPP TS 35.206 section 4.1, on an abstract E_K.
#include "crypto/milenage.h"

#include <cstddef>

#include <openssl/crypto.h>

#include "common/bytes.h"

namespace best::crypto {

namespace {

// Intermediate 128-bit values (TEMP, OUTn, inputs to E_K) are key-derived: wiped on scope exit.
struct BlockTag;
using Block = Secret<16, BlockTag>;

// Rotation constants r1..r5 (in octets; all are multiples of 8 bits) and the last octet of
// c1..c5 (the other 15 octets are zero), TS 35.206 4.1.
constexpr std::size_t kR1 = 8, kR2 = 0, kR3 = 4, kR4 = 8, kR5 = 12;
constexpr std::uint8_t kC1 = 0x00, kC2 = 0x01, kC3 = 0x02, kC4 = 0x04, kC5 = 0x08;

Result<void> encrypt(BlockCipher& ek, const Block& in, Block& out) {
    return ek.encryptBlock(in.data(), out.data());
}

// TEMP = E_K(RAND xor OPc).
Result<Block> temp(BlockCipher& ek, const Opc& opc, const Rand& rand) {
    Block in;
    for (std::size_t i = 0; i < 16; ++i)
        in[i] = static_cast<std::uint8_t>(rand[i] ^ opc[i]);
    Block out;
    auto r = encrypt(ek, in, out);
    if (!r)
        return makeError(r.error());
    return out;
}

// E_K(in) xor OPc, the last step of every OUTn.
Result<Block> encryptXorOpc(BlockCipher& ek, const Opc& opc, const Block& in) {
    Block out;
    auto r = encrypt(ek, in, out);
    if (!r)
        return makeError(r.error());
    for (std::size_t i = 0; i < 16; ++i)
        out[i] ^= opc[i];
    return out;
}

// OUTn = E_K(rot(x xor OPc, rn) xor cn) xor OPc, x = TEMP (n = 2..5) or TEMP xor rot(...) (n = 1).
// `x` is already combined with OPc by the caller where needed; see out1() and out2345().
Result<Block> finish(BlockCipher& ek, const Opc& opc, const Block& x, std::size_t rOctets,
                     std::uint8_t c) {
    Block in;
    for (std::size_t i = 0; i < 16; ++i)
        in[i] = x[(i + rOctets) % 16];
    in[15] ^= c;
    return encryptXorOpc(ek, opc, in);
}

// OUT1 = E_K(TEMP xor rot(IN1 xor OPc, r1) xor c1) xor OPc, IN1 = SQN || AMF || SQN || AMF.
Result<Block> out1(BlockCipher& ek, const Opc& opc, const Rand& rand, const Sqn& sqn,
                   const Amf& amf) {
    auto t = temp(ek, opc, rand);
    if (!t)
        return makeError(t.error());
    Block in1;
    for (std::size_t i = 0; i < 6; ++i)
        in1[i] = in1[i + 8] = sqn[i];
    in1[6] = in1[14] = amf[0];
    in1[7] = in1[15] = amf[1];
    Block in;
    for (std::size_t i = 0; i < 16; ++i) {
        const std::size_t j = (i + kR1) % 16;
        in[i] = static_cast<std::uint8_t>((*t)[i] ^ in1[j] ^ opc[j]);
    }
    in[15] ^= kC1;
    return encryptXorOpc(ek, opc, in);
}

// TEMP xor OPc, the common input of OUT2..OUT5.
Result<Block> tempXorOpc(BlockCipher& ek, const Opc& opc, const Rand& rand) {
    auto t = temp(ek, opc, rand);
    if (!t)
        return makeError(t.error());
    for (std::size_t i = 0; i < 16; ++i)
        (*t)[i] ^= opc[i];
    return t;
}

template <std::size_t N>
void copyOut(const Block& b, std::size_t from, std::array<std::uint8_t, N>& to) {
    for (std::size_t i = 0; i < N; ++i)
        to[i] = b[from + i];
}

// The 64-bit MAC at octet `from` of OUT1: f1 (MAC-A) at 0, f1* (MAC-S) at 8.
Result<Mac8> macAt(const Result<Block>& out1, std::size_t from) {
    if (!out1)
        return makeError(out1.error());
    Mac8 mac;
    copyOut(*out1, from, mac);
    return mac;
}

}  // namespace

SoftAes128::SoftAes128(const SubscriberK& k) {
    const Provider& p = Provider::instance();
    if (!p.ok())
        return;
    ctx_.reset(EVP_CIPHER_CTX_new());
    if (!ctx_)
        return;
    if (EVP_EncryptInit_ex2(ctx_.get(), p.aes128Ecb(), k.data(), nullptr, nullptr) != 1)
        return;
    if (EVP_CIPHER_CTX_set_padding(ctx_.get(), 0) != 1)
        return;
    ok_ = true;
}

Result<void> SoftAes128::encryptBlock(const std::uint8_t in[16], std::uint8_t out[16]) {
    if (!ok_)
        return opensslError("AES-128-ECB key setup");
    int outl = 0;
    if (EVP_EncryptUpdate(ctx_.get(), out, &outl, in, 16) != 1 || outl != 16) {
        return opensslError("AES-128-ECB encryption");
    }
    return {};
}

Result<Opc> computeOpc(BlockCipher& ek, const Op& op) {
    Block in(op.view());
    Block out;
    auto r = encrypt(ek, in, out);
    if (!r)
        return makeError(r.error());
    Opc opc;
    for (std::size_t i = 0; i < 16; ++i)
        opc[i] = static_cast<std::uint8_t>(out[i] ^ op[i]);
    return opc;
}

Result<Mac8> Milenage::f1(const Rand& rand, const Sqn& sqn, const Amf& amf) {
    return macAt(out1(ek_, opc_, rand, sqn, amf), 0);
}

Result<Mac8> Milenage::f1star(const Rand& rand, const Sqn& sqn, const Amf& amf) {
    return macAt(out1(ek_, opc_, rand, sqn, amf), 8);
}

Result<F2345> Milenage::f2345(const Rand& rand) {
    auto x = tempXorOpc(ek_, opc_, rand);
    if (!x)
        return makeError(x.error());
    auto o2 = finish(ek_, opc_, *x, kR2, kC2);
    if (!o2)
        return makeError(o2.error());
    auto o3 = finish(ek_, opc_, *x, kR3, kC3);
    if (!o3)
        return makeError(o3.error());
    auto o4 = finish(ek_, opc_, *x, kR4, kC4);
    if (!o4)
        return makeError(o4.error());
    F2345 f;
    copyOut(*o2, 8, f.res);  // f2 = OUT2[64..127]
    copyOut(*o2, 0, f.ak);   // f5 = OUT2[0..47]
    f.ck = Ck(o3->view());   // f3 = OUT3
    f.ik = Ik(o4->view());   // f4 = OUT4
    return f;
}

Result<Ak> Milenage::f5star(const Rand& rand) {
    auto x = tempXorOpc(ek_, opc_, rand);
    if (!x)
        return makeError(x.error());
    auto o5 = finish(ek_, opc_, *x, kR5, kC5);
    if (!o5)
        return makeError(o5.error());
    Ak ak;
    copyOut(*o5, 0, ak);  // f5* = OUT5[0..47]
    return ak;
}

Result<AuthVector> generateVector(BlockCipher& ek, const Opc& opc, const Rand& rand, const Sqn& sqn,
                                  const Amf& amf) {
    Milenage m(ek, opc);
    auto mac = m.f1(rand, sqn, amf);
    if (!mac)
        return makeError(mac.error());
    auto f = m.f2345(rand);
    if (!f)
        return makeError(f.error());
    AuthVector v;
    v.rand = rand;
    for (std::size_t i = 0; i < 6; ++i)
        v.autn[i] = static_cast<std::uint8_t>(sqn[i] ^ f->ak[i]);
    v.autn[6] = amf[0];
    v.autn[7] = amf[1];
    for (std::size_t i = 0; i < 8; ++i)
        v.autn[8 + i] = (*mac)[i];
    v.xres = f->res;
    v.ck = f->ck;
    v.ik = f->ik;
    v.ak = f->ak;
    v.sqn = sqn;
    return v;
}

Result<AutnOpened> openAutn(BlockCipher& ek, const Opc& opc, const Rand& rand, const Autn& autn) {
    Milenage m(ek, opc);
    auto f = m.f2345(rand);
    if (!f)
        return makeError(f.error());
    AutnOpened o;
    for (std::size_t i = 0; i < 6; ++i)
        o.sqn[i] = static_cast<std::uint8_t>(autn[i] ^ f->ak[i]);
    o.amf = {autn[6], autn[7]};
    auto xmac = m.f1(rand, o.sqn, o.amf);
    if (!xmac)
        return makeError(xmac.error());
    o.macOk = CRYPTO_memcmp(xmac->data(), autn.data() + 8, 8) == 0;
    o.res = f->res;
    o.ck = f->ck;
    o.ik = f->ik;
    o.ak = f->ak;
    return o;
}

Result<Auts> buildAuts(BlockCipher& ek, const Opc& opc, const Rand& rand, const Sqn& sqnMs) {
    Milenage m(ek, opc);
    auto akStar = m.f5star(rand);
    if (!akStar)
        return makeError(akStar.error());
    auto macS = m.f1star(rand, sqnMs, Amf{0x00, 0x00});  // TS 33.102 6.3.3: AMF* = 0000
    if (!macS)
        return makeError(macS.error());
    Auts auts;
    for (std::size_t i = 0; i < 6; ++i)
        auts[i] = static_cast<std::uint8_t>(sqnMs[i] ^ (*akStar)[i]);
    for (std::size_t i = 0; i < 8; ++i)
        auts[6 + i] = (*macS)[i];
    return auts;
}

Result<Sqn> recoverSqnMs(BlockCipher& ek, const Opc& opc, const Rand& rand, const Auts& auts) {
    Milenage m(ek, opc);
    auto akStar = m.f5star(rand);
    if (!akStar)
        return makeError(akStar.error());
    Sqn sqnMs;
    for (std::size_t i = 0; i < 6; ++i)
        sqnMs[i] = static_cast<std::uint8_t>(auts[i] ^ (*akStar)[i]);
    auto xmacS = m.f1star(rand, sqnMs, Amf{0x00, 0x00});
    if (!xmacS)
        return makeError(xmacS.error());
    if (CRYPTO_memcmp(xmacS->data(), auts.data() + 6, 8) != 0) {
        return makeError(CryptoErrc::mac_s_failure, "AUTS MAC-S check failed");
    }
    return sqnMs;
}

std::uint64_t sqnToInt(const Sqn& s) noexcept {
    return getBe48(s.data());
}

Sqn sqnFromInt(std::uint64_t v) noexcept {
    Sqn s;
    putBe48(s.data(), v & 0xFFFFFFFFFFFFULL);
    return s;
}

}  // namespace best::crypto
