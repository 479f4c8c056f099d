package identity

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// maxTokenBytes bounds the tokens looked at; longer ones are ignored.
	maxTokenBytes = 16 << 10
	// maxCachedTokens bounds the verification cache; it is emptied when full.
	maxCachedTokens = 4096
)

// errUnknownKID and errNoJWKS say the key set lacks the token's key: it is fetched again, and
// the result is not cached, so the token is checked with the new set.
var (
	errUnknownKID = errors.New("unknown key id")
	errNoJWKS     = errors.New("no JWKS loaded")
)

var (
	hmacMethods       = []string{"HS256", "HS384", "HS512"}
	asymmetricMethods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

// jwtVerifier attributes bearer JWTs. Verification results are cached by the SHA-256 of the
// token, so a token reused for many calls is verified once and the token itself is never kept.
type jwtVerifier struct {
	claim   string
	leeway  time.Duration
	hmac    []byte
	useJWKS bool
	// verifyOpts make the verifying parser, nil when there is nothing to verify with. A parser
	// is made per check so exp, nbf and iat are checked at the caller's time, the cache's clock.
	verifyOpts []jwt.ParserOption
	decode     *jwt.Parser
	keys       atomic.Pointer[keySet]
	// gen counts key set changes, so a result computed with an old set is not cached.
	gen atomic.Uint64
	// unknownKID is signalled (without blocking) when a token names a key id the set lacks, or
	// no set could be loaded yet.
	unknownKID chan struct{}

	mu    sync.Mutex
	cache map[[sha256.Size]byte]tokenResult
}

type tokenResult struct {
	agent    string
	verified bool
	exp      time.Time // zero when the token has no exp
	// recheckAt, when set, is when an unverified token that failed only for its nbf or iat
	// becomes valid (the later of them less the leeway): from then on the cached failure is
	// stale and it is checked again. Other failures do not depend on the time (an expired token
	// stays expired).
	recheckAt time.Time
	// keyMissing: the key set lacked the token's key. The set is being fetched again, so the
	// result is not cached.
	keyMissing bool
}

func newJWTVerifier(c JWTConfig) *jwtVerifier {
	v := &jwtVerifier{
		claim:      c.Claim,
		leeway:     c.Leeway,
		useJWKS:    c.JWKSFile != "" || c.JWKSURL != "",
		decode:     jwt.NewParser(),
		unknownKID: make(chan struct{}, 1),
		cache:      map[[sha256.Size]byte]tokenResult{},
	}
	var methods []string
	if c.HMACSecret != "" {
		v.hmac = []byte(c.HMACSecret)
		methods = append(methods, hmacMethods...)
	}
	if v.useJWKS {
		methods = append(methods, asymmetricMethods...)
	}
	if len(methods) > 0 {
		opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithLeeway(c.Leeway), jwt.WithIssuedAt()}
		if c.Issuer != "" {
			opts = append(opts, jwt.WithIssuer(c.Issuer))
		}
		if c.Audience != "" {
			opts = append(opts, jwt.WithAudience(c.Audience))
		}
		v.verifyOpts = opts
	}
	return v
}

// setKeys installs a new key set and forgets results obtained with the old one.
func (v *jwtVerifier) setKeys(ks *keySet) {
	v.mu.Lock()
	if old := v.keys.Load(); old != nil && old.digest == ks.digest {
		// The same document: the verified tokens stay verified. (Tokens whose key the set
		// lacks ask for reloads for as long as they come; this keeps those from costing
		// every other token its cached result.)
		v.mu.Unlock()
		return
	}
	v.keys.Store(ks)
	v.gen.Add(1)
	clear(v.cache)
	v.mu.Unlock()
}

// bearerToken returns the JWT of an Authorization header value, or "".
func bearerToken(auth string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(auth), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	tok = strings.TrimSpace(tok)
	if len(tok) > maxTokenBytes || strings.Count(tok, ".") != 2 {
		return ""
	}
	return tok
}

// attribute returns the agent a token names and whether the token was verified; agent is ""
// when the token is not a JWT or lacks the claim.
func (v *jwtVerifier) attribute(tok string, now time.Time) (agent string, verified bool) {
	key := sha256.Sum256([]byte(tok))
	v.mu.Lock()
	res, ok := v.cache[key]
	v.mu.Unlock()
	if ok && !res.recheckAt.IsZero() && !now.Before(res.recheckAt) {
		ok = false // it was early, and no longer is
	}
	if !ok {
		gen := v.gen.Load()
		res = v.check(tok, now)
		v.mu.Lock()
		// When the keys changed meanwhile, or lacked this token's, check again next time.
		if v.gen.Load() == gen && !res.keyMissing {
			if len(v.cache) >= maxCachedTokens {
				clear(v.cache)
			}
			v.cache[key] = res
		}
		v.mu.Unlock()
	}
	// A cached token may have expired since it was verified.
	if res.verified && !res.exp.IsZero() && now.After(res.exp.Add(v.leeway)) {
		return res.agent, false
	}
	return res.agent, res.verified
}

// check parses and, when it can, verifies a token at time now.
func (v *jwtVerifier) check(tok string, now time.Time) tokenResult {
	claims := jwt.MapClaims{}
	verified, early, keyMissing := false, false, false
	if v.verifyOpts != nil {
		p := jwt.NewParser(append(slices.Clip(v.verifyOpts), jwt.WithTimeFunc(func() time.Time { return now }))...)
		_, err := p.ParseWithClaims(tok, claims, v.keyFor)
		verified = err == nil
		// Claims are checked only once the signature holds, so this token is genuine but early.
		early = errors.Is(err, jwt.ErrTokenNotValidYet) || errors.Is(err, jwt.ErrTokenUsedBeforeIssued)
		keyMissing = errors.Is(err, errUnknownKID) || errors.Is(err, errNoJWKS)
		if keyMissing {
			select {
			case v.unknownKID <- struct{}{}:
			default:
			}
		}
	}
	if !verified {
		claims = jwt.MapClaims{}
		if _, _, err := v.decode.ParseUnverified(tok, claims); err != nil {
			return tokenResult{}
		}
	}
	res := tokenResult{verified: verified, keyMissing: keyMissing}
	res.agent, _ = claims[v.claim].(string)
	res.agent = CleanAgent(res.agent)
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		res.exp = exp.Time
	}
	if early {
		for _, get := range []func() (*jwt.NumericDate, error){claims.GetNotBefore, claims.GetIssuedAt} {
			if t, err := get(); err == nil && t != nil && t.Add(-v.leeway).After(res.recheckAt) {
				res.recheckAt = t.Add(-v.leeway)
			}
		}
	}
	if res.agent == "" {
		res.verified = false
	}
	return res
}

// keyFor picks the verification key by the token's algorithm family and key id. A key whose
// JWK names an alg verifies only tokens of that alg.
func (v *jwtVerifier) keyFor(t *jwt.Token) (any, error) {
	if _, ok := t.Method.(*jwt.SigningMethodHMAC); ok {
		if v.hmac == nil {
			return nil, errors.New("no HMAC secret configured")
		}
		return v.hmac, nil
	}
	if !v.useJWKS {
		return nil, errors.New("no JWKS configured")
	}
	ks := v.keys.Load()
	if ks == nil {
		return nil, errNoJWKS
	}
	alg := t.Method.Alg()
	if kid, _ := t.Header["kid"].(string); kid != "" {
		k, ok := ks.byKID[kid]
		if !ok {
			return nil, errUnknownKID
		}
		if k.alg != "" && k.alg != alg {
			return nil, fmt.Errorf("key %q is for %s, not %s", kid, k.alg, alg)
		}
		return k.pub, nil
	}
	var keys []jwt.VerificationKey
	for _, k := range ks.all {
		if k.alg == "" || k.alg == alg {
			keys = append(keys, k.pub)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no key for %s", alg)
	}
	return jwt.VerificationKeySet{Keys: keys}, nil
}
