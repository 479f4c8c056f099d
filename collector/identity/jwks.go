package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
)

// maxJWKSBytes bounds a key set read from a file or a URL.
const maxJWKSBytes = 1 << 20

// keySet is a parsed JSON Web Key Set: public keys by key id, and all of them for tokens
// without a kid.
type keySet struct {
	byKID  map[string]setKey
	all    []setKey
	digest [sha256.Size]byte // of the JWKS document, to tell a reload that changed nothing
}

// setKey is a key of the set with the algorithm its JWK restricts it to ("" for any).
type setKey struct {
	pub crypto.PublicKey
	alg string
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS parses a JWKS document. Keys of unknown types, or meant for encryption, are
// skipped; a set without a usable key is an error.
func parseJWKS(data []byte) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("cannot parse JWKS: %w", err)
	}
	ks := &keySet{byKID: map[string]setKey{}, digest: sha256.Sum256(data)}
	var errs []error
	for i, raw := range doc.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			errs = append(errs, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		pub, err := k.publicKey()
		if err != nil {
			errs = append(errs, fmt.Errorf("key %d (kid %q): %w", i, k.Kid, err))
			continue
		}
		if pub == nil {
			continue // a key type tokens are not verified with
		}
		sk := setKey{pub: pub, alg: k.Alg}
		ks.all = append(ks.all, sk)
		if k.Kid != "" {
			ks.byKID[k.Kid] = sk
		}
	}
	if len(ks.all) == 0 {
		errs = append(errs, errors.New("no usable signing key (RSA, EC or Ed25519)"))
		return nil, fmt.Errorf("cannot use JWKS: %w", errors.Join(errs...))
	}
	return ks, nil
}

func (k jwk) publicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		n, err := b64int(k.N)
		if err != nil {
			return nil, fmt.Errorf("n: %w", err)
		}
		e, err := b64int(k.E)
		if err != nil {
			return nil, fmt.Errorf("e: %w", err)
		}
		if n.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits is too short", n.BitLen())
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
			return nil, errors.New("bad RSA exponent")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64fixed(k.X, size)
		if err != nil {
			return nil, fmt.Errorf("x: %w", err)
		}
		y, err := b64fixed(k.Y, size)
		if err != nil {
			return nil, fmt.Errorf("y: %w", err)
		}
		return ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		x, err := b64fixed(k.X, ed25519.PublicKeySize)
		if err != nil {
			return nil, fmt.Errorf("x: %w", err)
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, nil
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("not a base64url integer")
	}
	return new(big.Int).SetBytes(b), nil
}

func b64fixed(s string, size int) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != size {
		return nil, fmt.Errorf("not %d base64url bytes", size)
	}
	return b, nil
}

// loadJWKS reads the key set from the file or the URL.
func loadJWKS(ctx context.Context, client *http.Client, file, url string) (*keySet, error) {
	var data []byte
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("cannot read JWKS file: %w", err)
		}
		defer f.Close()
		if data, err = io.ReadAll(io.LimitReader(f, maxJWKSBytes+1)); err != nil {
			return nil, fmt.Errorf("cannot read JWKS file: %w", err)
		}
	} else {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, fmt.Errorf("cannot fetch JWKS: %w", err)
		}
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("cannot fetch JWKS: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("cannot fetch JWKS: HTTP status %d", resp.StatusCode)
		}
		if data, err = io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1)); err != nil {
			return nil, fmt.Errorf("cannot fetch JWKS: %w", err)
		}
	}
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("cannot use JWKS: larger than %d bytes", maxJWKSBytes)
	}
	return parseJWKS(data)
}
