package inspect

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// Flag types inspection adds (docs/inspection.md describes each, with its severities).
const (
	TypeInjection      = "injection_phrase"
	TypeHiddenUnicode  = "hidden_unicode"
	TypeANSIEscape     = "ansi_escape"
	TypeControlChar    = "control_char"
	TypeEncodedPayload = "encoded_payload"
	TypeScript         = "script_snippet"
	TypeSecret         = "secret"
	TypePII            = "pii"
	TypeURLNotAllowed  = "url_not_allowed"
	TypeImageExfil     = "markdown_image_exfil"
)

// InjectionTypes are the flag types that say content tries to instruct the agent; `mcpwatch
// eval injection` counts a prompt as flagged when it gets one of them.
var InjectionTypes = []string{TypeInjection}

// Inspector inspects content. It is safe for concurrent use; a nil or disabled Inspector
// inspects nothing.
type Inspector struct {
	enabled  bool
	on       uint16 // bit per detector, in the order of Detectors
	allow    allowlist
	maxDepth int
	maxFlags int
	hashKey  []byte
	pool     sync.Pool // *scratch
}

// New returns an inspector for cfg (defaults applied to zero fields).
func New(cfg Config) (*Inspector, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid inspection config: %w", err)
	}
	in := &Inspector{
		enabled:  *cfg.Enabled,
		allow:    newAllowlist(cfg.URLAllowlist),
		maxDepth: cfg.MaxDecodeDepth,
		maxFlags: cfg.MaxFlags,
		hashKey:  []byte(cfg.HashKey),
	}
	for i, d := range Detectors {
		if slices.Contains(cfg.Detectors, d) {
			in.on |= 1 << i
		}
	}
	if len(in.hashKey) == 0 {
		in.hashKey = make([]byte, 32)
		if _, err := rand.Read(in.hashKey); err != nil {
			return nil, fmt.Errorf("cannot make an evidence hash key: %w", err)
		}
	}
	in.pool.New = func() any { return new(scratch) }
	return in, nil
}

// detector bits, in the order of Detectors.
const (
	detInjection = 1 << iota
	detHidden
	detControl
	detEncoded
	detScript
	detSecrets
	detPII
	detURLs
)

// Event inspects ev.Content (arguments, then result) and appends what it finds to ev.Flags,
// at most Config.MaxFlags per call. Paths are JSON paths rooted at $.arguments and $.result,
// e.g. $.arguments.query or $.result.content[0].text; text that is not JSON (or cut at the
// collector's cap in a way the walk cannot follow) is inspected as one string at the root.
func (in *Inspector) Event(ev *schemas.Event) {
	if in == nil || !in.enabled || ev == nil || ev.Content == nil {
		return
	}
	j := in.job(ev.Flags)
	j.json("$.arguments", ev.Content.Arguments)
	j.json("$.result", ev.Content.Result)
	ev.Flags = j.done()
}

// Text inspects one string found at path (e.g. a tool description from a tools/list result)
// and appends flags to dst, at most Config.MaxFlags per call.
func (in *Inspector) Text(path, s string, dst []schemas.Flag) []schemas.Flag {
	if in == nil || !in.enabled || s == "" {
		return dst
	}
	j := in.job(dst)
	j.value(s, path, nil)
	return j.done()
}

func (in *Inspector) job(dst []schemas.Flag) *job {
	sc := in.pool.Get().(*scratch)
	sc.job = job{in: in, sc: sc, dst: dst, limit: len(dst) + in.maxFlags}
	return &sc.job
}

// done returns the flags and gives the scratch space back.
func (j *job) done() []schemas.Flag {
	dst, sc, in := j.dst, j.sc, j.in
	sc.job = job{} // j is sc.job
	in.pool.Put(sc)
	return dst
}

// job is one call's state: where flags go, and how deep decoded content goes.
type job struct {
	in    *Inspector
	sc    *scratch
	dst   []schemas.Flag
	limit int
	depth int
	via   string // evidence prefix for findings inside decoded content, e.g. "base64@12: "
}

// full reports whether no more flags may be added.
func (j *job) full() bool { return len(j.dst) >= j.limit }

// add appends a flag (its path is filled in by the caller).
func (j *job) add(typ string, sev schemas.Severity, evidence string) {
	if j.full() {
		return
	}
	j.dst = append(j.dst, schemas.Flag{Type: typ, Severity: sev, Evidence: j.via + evidence})
}

// value inspects one string found at root and segs, and gives the flags it adds that path.
func (j *job) value(s, root string, segs []seg) {
	n := len(j.dst)
	j.inspect(s)
	if len(j.dst) > n {
		p := root
		if len(segs) > 0 {
			p = appendPath([]byte(root), segs)
		}
		for i := n; i < len(j.dst); i++ {
			j.dst[i].Path = p
		}
	}
}

// inspect runs the detectors s's features call for, then inspects what they decoded.
func (j *job) inspect(s string) {
	if s == "" || j.full() {
		return
	}
	sc := j.sc
	f := sc.scan(s)
	on := j.in.on
	var decoded []decodedText
	if on&detInjection != 0 {
		j.injection(s, &f)
	}
	if on&detHidden != 0 && f.nonASCII {
		decoded = j.hiddenUnicode(s, decoded)
	}
	if on&detControl != 0 && (f.ctrl || f.esc) {
		j.control(s)
	}
	var secretSpans []span
	if on&detSecrets != 0 && (f.maxRun >= minSecretRun || f.dashes) {
		secretSpans = j.secrets(s, &f)
	}
	if on&detEncoded != 0 && (f.maxB64 >= minBase64Run || f.maxHex >= minHexRun || f.pct >= minPercentEscapes || f.bsx >= minPercentEscapes) {
		decoded = j.encoded(s, &f, secretSpans, decoded)
	}
	if on&detScript != 0 && f.classes&(cShell|cShellWeak) != 0 {
		j.script(s, &f)
	}
	if on&detPII != 0 && (f.at || f.digits >= 7) {
		j.pii(s, &f, secretSpans)
	}
	if on&detURLs != 0 && (f.scheme || f.www || f.imgMD || f.lt) {
		j.urls(s, &f)
	}
	if len(decoded) == 0 || j.depth >= j.in.maxDepth {
		return
	}
	// The scratch buffers now belong to the decoded texts' inspection.
	outer := j.via
	j.depth++
	for _, d := range decoded {
		j.via = outer + d.via
		j.inspect(d.text)
	}
	j.depth--
	j.via = outer
}

// decodedText is content a detector decoded for inspection in its own right.
type decodedText struct {
	via  string // e.g. "base64@12: "
	text string
}

type span struct{ start, end int }

func inSpans(spans []span, i int) bool {
	for _, s := range spans {
		if i >= s.start && i < s.end {
			return true
		}
	}
	return false
}

// hash is the evidence hash of a finding: 8 hex digits of HMAC-SHA256 under the inspector's
// key, enough to tell findings apart and match repeats, useless for guessing the value.
func (j *job) hash(s string) string {
	m := hmac.New(sha256.New, j.in.hashKey)
	m.Write([]byte(s))
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0])[:4])
}

// loc formats "at=OFF len=N".
func loc(start, end int) string {
	return "at=" + strconv.Itoa(start) + " len=" + strconv.Itoa(end-start)
}

// ruleList joins rule names with "+".
func ruleList(rules []string) string { return strings.Join(rules, "+") }
