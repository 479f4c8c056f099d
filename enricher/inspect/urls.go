package inspect

import (
	"strconv"
	"strings"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// allowlist matches hosts: exact names, and *.domain for any subdomain.
type allowlist struct {
	exact    map[string]bool
	suffixes []string // ".example.com"
}

func newAllowlist(hosts []string) allowlist {
	a := allowlist{exact: make(map[string]bool)}
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.ToLower(h), ".")
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			a.suffixes = append(a.suffixes, "."+rest)
		} else {
			a.exact[h] = true
		}
	}
	return a
}

func (a allowlist) configured() bool { return len(a.exact) > 0 || len(a.suffixes) > 0 }

// allows reports whether host (lower case) is allowed.
func (a allowlist) allows(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if a.exact[host] {
		return true
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// maxURLFlags bounds url_not_allowed flags per string (one per host).
const maxURLFlags = 5

// urls flags image links that carry data out (markdown ![…](url) and <img src=…> to a host
// outside the allowlist, with a query or path long enough to hold data, or a placeholder for
// it) and, when an allowlist is configured, links to other hosts.
func (j *job) urls(s string, f *features) {
	ls := j.sc.ls
	var images []span // the URLs of image links, not flagged again as plain links
	if f.imgMD || f.lt {
		imgs := imageScanner{ls: ls, md: -2, tag: -2}
		for {
			start, end, ok := imgs.next()
			if !ok {
				break
			}
			images = append(images, span{start, end})
			u := s[start:end]
			host := urlHost(strings.ToLower(u))
			if host == "" || j.in.allow.allows(host) {
				continue
			}
			if data, sev := exfilShape(u); data != "" {
				j.add(TypeImageExfil, sev, "host="+evidenceHost(host)+" "+data+" "+loc(start, end))
			}
		}
	}
	if !j.in.allow.configured() || !(f.scheme || f.www) {
		return
	}
	var seen [maxURLFlags]string
	n := 0
	urls := urlScanner{ls: ls, scheme: -2, www: -2}
	for n < maxURLFlags {
		start, end, ok := urls.next()
		if !ok {
			break
		}
		if inSpans(images, start) {
			continue
		}
		host := urlHost(ls[start:end])
		if host == "" || j.in.allow.allows(host) {
			continue
		}
		dup := false
		for _, h := range seen[:n] {
			dup = dup || h == host
		}
		if dup {
			continue
		}
		seen[n] = host
		n++
		j.add(TypeURLNotAllowed, schemas.SeverityLow, "host="+evidenceHost(host)+" "+loc(start, end))
	}
}

// evidenceHost is a host as evidence shows it: a copy (the text it came from is reused), and
// only when it is a DNS name or an IP address; anything else could be data (a token in the
// host part of a link), so it shows as "?".
func evidenceHost(h string) string {
	if len(h) == 0 || len(h) > 253 {
		return "?"
	}
	label := 0
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case c == '.':
			if label == 0 {
				return "?"
			}
			label = 0
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '[', c == ']', c == ':':
			label++
			if label > 63 {
				return "?"
			}
		default:
			return "?"
		}
	}
	return strings.Clone(h)
}

// nextIndex returns the index of sub in ls at or after from, remembering it in *at so that
// scanning a text takes one search per occurrence (-1: none left).
func nextIndex(ls, sub string, from int, at *int) int {
	if *at >= from || *at == -1 {
		return *at
	}
	if i := strings.Index(ls[from:], sub); i >= 0 {
		*at = from + i
	} else {
		*at = -1
	}
	return *at
}

// imageScanner finds the URLs of image links in order: ![alt](URL "title") and
// <img … src="URL">.
type imageScanner struct {
	ls      string
	from    int
	md, tag int // the next "![" and "<img", -2 before the first search
}

func (sc *imageScanner) next() (int, int, bool) {
	ls := sc.ls
	for sc.from < len(ls) {
		md := nextIndex(ls, "![", sc.from, &sc.md)
		tag := nextIndex(ls, "<img", sc.from, &sc.tag)
		if md < 0 && tag < 0 {
			return 0, 0, false
		}
		if md >= 0 && (tag < 0 || md < tag) {
			i := md + 2
			sc.from = i
			close := strings.IndexByte(ls[i:min(len(ls), i+500)], ']')
			if close < 0 || i+close+1 >= len(ls) || ls[i+close+1] != '(' {
				continue
			}
			start := i + close + 2
			for start < len(ls) && (ls[start] == ' ' || ls[start] == '<') {
				start++
			}
			end := start
			for end < len(ls) && ls[end] != ')' && ls[end] != ' ' && ls[end] != '>' && ls[end] != '\n' {
				end++
			}
			sc.from = max(sc.from, end)
			return start, end, end > start
		}
		i := tag + 4
		sc.from = i
		gt := strings.IndexByte(ls[i:min(len(ls), i+2000)], '>')
		if gt < 0 {
			gt = min(len(ls), i+2000) - i
		}
		k := strings.Index(ls[i:i+gt], "src=")
		if k < 0 {
			continue
		}
		start := i + k + 4
		quote := byte(0)
		if start < len(ls) && (ls[start] == '"' || ls[start] == '\'') {
			quote = ls[start]
			start++
		}
		end := start
		for end < len(ls) && ls[end] != quote && ls[end] != '>' && (quote != 0 || ls[end] != ' ') {
			end++
		}
		sc.from = max(sc.from, end)
		return start, end, end > start
	}
	return 0, 0, false
}

// urlScanner finds http(s)/ftp/ws(s) URLs and bare www. hosts in order.
type urlScanner struct {
	ls          string
	from        int
	scheme, www int // the next "://" and "www.", -2 before the first search
}

func (sc *urlScanner) next() (int, int, bool) {
	ls := sc.ls
	for sc.from < len(ls) {
		i := nextIndex(ls, "://", sc.from, &sc.scheme)
		w := nextIndex(ls, "www.", sc.from, &sc.www)
		if i < 0 && w < 0 {
			return 0, 0, false
		}
		var start int
		if i >= 0 && (w < 0 || i <= w) {
			start = i
			for start > 0 && i-start < 5 && ls[start-1] >= 'a' && ls[start-1] <= 'z' {
				start--
			}
			switch ls[start:i] {
			case "http", "https", "ftp", "ws", "wss":
			default:
				sc.from = i + 3
				continue
			}
		} else {
			start = w
			if start > 0 && (byteClass[ls[start-1]]&bWord != 0 || ls[start-1] == '.' || ls[start-1] == '/') {
				sc.from = start + 4
				continue
			}
		}
		end := start
		for end < len(ls) && ls[end] > ' ' && strings.IndexByte("\"'<>`)]}", ls[end]) < 0 {
			end++
		}
		sc.from = max(end, start+1)
		return start, end, true
	}
	return 0, 0, false
}

// urlHost returns the host of a URL (lower case), without port and credentials.
func urlHost(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	} else if strings.HasPrefix(u, "//") {
		u = u[2:]
	} else if !strings.HasPrefix(u, "www.") {
		return "" // relative
	}
	if i := strings.IndexAny(u, "/?#\\"); i >= 0 {
		u = u[:i]
	}
	if i := strings.LastIndexByte(u, '@'); i >= 0 {
		u = u[i+1:]
	}
	if strings.HasPrefix(u, "[") { // IPv6
		if i := strings.IndexByte(u, ']'); i >= 0 {
			return u[:i+1]
		}
	}
	if i := strings.LastIndexByte(u, ':'); i >= 0 {
		u = u[:i]
	}
	return u
}

// exfilShape says what in an image URL could carry data: a long query value, a long path
// segment, many parameters, or a placeholder the agent is asked to fill ({…}, $…, <…>). It
// returns "" for an image URL with none of these (a plain picture or a badge).
func exfilShape(u string) (string, schemas.Severity) {
	rest := u
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	path, query, _ := strings.Cut(rest, "?")
	if i := strings.IndexByte(path, '/'); i >= 0 {
		path = path[i:]
	} else {
		path = ""
	}
	if strings.ContainsAny(u, "{}$") || strings.Contains(u, "%7b") || strings.Contains(u, "%7B") || strings.Contains(u, "<") {
		return "placeholder=1 query_len=" + strconv.Itoa(len(query)), schemas.SeverityHigh
	}
	longest, params := 0, 0
	for _, kv := range strings.Split(query, "&") {
		if kv == "" {
			continue
		}
		params++
		_, v, _ := strings.Cut(kv, "=")
		longest = max(longest, len(v))
	}
	longSeg := 0
	for _, seg := range strings.Split(path, "/") {
		longSeg = max(longSeg, len(seg))
	}
	switch {
	case longest >= 16 || params >= 4 || len(query) >= 48:
		return "params=" + strconv.Itoa(params) + " longest_value=" + strconv.Itoa(longest) + " query_len=" + strconv.Itoa(len(query)), schemas.SeverityHigh
	case longSeg >= 48:
		// Could be data, but content-addressed file names look the same.
		return "longest_path_segment=" + strconv.Itoa(longSeg), schemas.SeverityLow
	case params > 0:
		return "params=" + strconv.Itoa(params) + " longest_value=" + strconv.Itoa(longest) + " query_len=" + strconv.Itoa(len(query)), schemas.SeverityLow
	}
	return "", ""
}
