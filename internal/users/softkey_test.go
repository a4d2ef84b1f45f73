package users

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
)

// softKey is a software authenticator for tests: one ECDSA P-256
// credential with a signature counter, answering registration and login
// challenges the way a browser hands them to the server (the
// PublicKeyCredential JSON), with the origin and RP ID it is told.
type softKey struct {
	t      testing.TB
	priv   *ecdsa.PrivateKey
	id     []byte
	handle []byte // the user handle it stored at registration
	count  uint32
	flags  byte // UP|UV by default
}

const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

var b64u = base64.RawURLEncoding

func newSoftKey(t testing.TB) *softKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return &softKey{t: t, priv: priv, id: id, flags: flagUP | flagUV}
}

// clone returns a copy holding the same private key and credential ID
// (and counter): a cloned authenticator.
func (k *softKey) clone() *softKey { c := *k; return &c }

func cborBytes(b []byte) []byte {
	switch {
	case len(b) < 24:
		return append([]byte{0x40 | byte(len(b))}, b...)
	case len(b) < 256:
		return append([]byte{0x58, byte(len(b))}, b...)
	default:
		return append([]byte{0x59, byte(len(b) >> 8), byte(len(b))}, b...)
	}
}

func cborText(s string) []byte { return append([]byte{0x60 | byte(len(s))}, s...) }

// coseKey is the credential's public key as a COSE EC2 map.
func (k *softKey) coseKey() []byte {
	pub, err := k.priv.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		k.t.Fatal(err)
	}
	out := []byte{0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21}
	out = append(out, cborBytes(pub[1:33])...)
	out = append(out, 0x22)
	return append(out, cborBytes(pub[33:65])...)
}

func (k *softKey) authData(rpID string, flags byte, attested bool) []byte {
	h := sha256.Sum256([]byte(rpID))
	out := append([]byte{}, h[:]...)
	out = append(out, flags)
	out = binary.BigEndian.AppendUint32(out, k.count)
	if attested {
		out = append(out, make([]byte, 16)...) // AAGUID
		out = binary.BigEndian.AppendUint16(out, uint16(len(k.id)))
		out = append(out, k.id...)
		out = append(out, k.coseKey()...)
	}
	return out
}

func clientData(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

// register answers creation options as a browser at origin would, for
// RP ID rpID (normally the options' own).
func (k *softKey) register(opts *protocol.CredentialCreation, origin, rpID string) []byte {
	k.t.Helper()
	var handle []byte
	switch v := opts.Response.User.ID.(type) {
	case protocol.URLEncodedBase64:
		handle = v
	case []byte:
		handle = v
	default:
		k.t.Fatalf("user.id of type %T", v)
	}
	k.handle = append([]byte(nil), handle...)
	ad := k.authData(rpID, k.flags|flagAT, true)
	att := []byte{0xa3}
	att = append(att, cborText("fmt")...)
	att = append(att, cborText("none")...)
	att = append(att, cborText("attStmt")...)
	att = append(att, 0xa0)
	att = append(att, cborText("authData")...)
	att = append(att, cborBytes(ad)...)
	cd := clientData("webauthn.create", opts.Response.Challenge.String(), origin)
	b, _ := json.Marshal(map[string]any{
		"id": b64u.EncodeToString(k.id), "rawId": b64u.EncodeToString(k.id), "type": "public-key",
		"response":               map[string]any{"clientDataJSON": b64u.EncodeToString(cd), "attestationObject": b64u.EncodeToString(att)},
		"clientExtensionResults": map[string]any{},
	})
	return b
}

// assert answers request options as a browser at origin would, for RP ID
// rpID, after bumping its counter (unless the counter is not kept).
func (k *softKey) assert(opts *protocol.CredentialAssertion, origin, rpID string) []byte {
	k.t.Helper()
	k.count++
	return k.assertAt(opts.Response.Challenge.String(), origin, rpID)
}

func (k *softKey) assertAt(challenge, origin, rpID string) []byte {
	k.t.Helper()
	ad := k.authData(rpID, k.flags, false)
	cd := clientData("webauthn.get", challenge, origin)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	if err != nil {
		k.t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{
		"id": b64u.EncodeToString(k.id), "rawId": b64u.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64u.EncodeToString(cd), "authenticatorData": b64u.EncodeToString(ad),
			"signature": b64u.EncodeToString(sig), "userHandle": b64u.EncodeToString(k.handle)},
		"clientExtensionResults": map[string]any{},
	})
	return b
}
