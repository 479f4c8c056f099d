package inspect

import (
	"strings"
	"unsafe"
)

// scratch is the reusable memory of one inspection; a pool keeps them.
type scratch struct {
	job    job
	walker walker
	b64    []byte   // base64 decoding
	lower  []byte   // ASCII-lowercased copy of the string being inspected
	ls     string   // lower as a string (sharing its memory)
	dec    []byte   // a JSON string's decoded value
	toks   []token  // the words of the vocabulary found in the string
	sents  []int32  // byte offset where each sentence starts
	sentCl []uint64 // union of the classes of each sentence's words
	sentTk []int32  // index in toks of each sentence's first token
	spans  []span
	rules  []string
}

// token is a word of the vocabulary found in the text.
type token struct {
	h          uint64 // FNV-1a of the lowercased word
	cls        uint64 // its classes
	w          int32  // word index in the text
	sent       int32  // sentence index
	sw         int32  // word index of its sentence's first word
	start, end int32  // byte offsets
}

// features are what one pass over a string learns; detectors run only when they call for it.
type features struct {
	nonASCII bool
	ctrl     bool // C0 controls other than \t \n \r, DEL, C1 controls (UTF-8 encoded)
	esc      bool
	at       bool // '@'
	scheme   bool // "://"
	www      bool // "www."
	imgMD    bool // "!["
	lt       bool // '<'
	tagish   bool // '<' '[' or '#'
	newline  bool
	pct      int // "%XX"
	bsx      int // `\xHH`
	digits   int
	maxRun   int // longest run of token characters [A-Za-z0-9_+/=.~-]
	maxB64   int // longest run of base64 characters [A-Za-z0-9+/=_-]
	maxHex   int // longest run of hex digits
	dashes   bool
	classes  uint64 // union of the classes of the words found
	words    int
}

// byte classes for the scan.
const (
	bWord    = 1 << iota // part of a word: letters, digits, _ and '
	bRun                 // token character: [A-Za-z0-9_+/=.~-]
	bB64                 // base64 character: [A-Za-z0-9+/=_-]
	bHex                 // hex digit
	bDigit               // decimal digit
	bSpecial             // a byte the scan looks at: sentence ends, %, \, controls
)

var (
	byteClass [256]uint8
	lowerByte [256]byte
)

func init() {
	for c := 0; c < 256; c++ {
		var k uint8
		switch {
		case c >= '0' && c <= '9':
			k = bWord | bRun | bB64 | bHex | bDigit
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			k = bWord | bRun | bB64 | bHex
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			k = bWord | bRun | bB64
		case c == '_':
			k = bWord | bRun | bB64
		case c == '\'':
			k = bWord
		case c == '+', c == '/', c == '=', c == '-':
			k = bRun | bB64
		case c == '.', c == '~':
			k = bRun | bSpecial*boolByte(c == '.')
		case c >= 0x80:
			k = bWord // UTF-8: letters of other scripts belong to words
		case c == '!', c == '?', c == '%', c == '\\', c < 0x20, c == 0x7f:
			k = bSpecial
		}
		byteClass[c] = k
		lowerByte[c] = byte(c)
		if c >= 'A' && c <= 'Z' {
			lowerByte[c] = byte(c) + 'a' - 'A'
		}
	}
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	maxWord   = 24 // longer words are not in the vocabulary
)

// scanState is the word and sentence being read.
type scanState struct {
	wstart   int
	h        uint64
	word     int32
	sent, sw int32 // the current sentence and its first word
}

// endWord records the word ending at end if it is in the vocabulary, and returns its classes.
func (sc *scratch) endWord(st *scanState, end int) uint64 {
	var cls uint64
	if n := end - st.wstart; n >= 2 && n <= maxWord && vocabMaybe(st.h) {
		if c, ok := vocab[st.h]; ok {
			cls = c
			sc.sentCl[st.sent] |= c
			sc.toks = append(sc.toks, token{h: st.h, cls: c, w: st.word, sent: st.sent, sw: st.sw, start: int32(st.wstart), end: int32(end)})
		}
	}
	st.word++
	st.wstart = -1
	return cls
}

func (sc *scratch) endSentence(st *scanState, next int) {
	st.sent++
	st.sw = st.word
	sc.sents = append(sc.sents, int32(next))
	sc.sentCl = append(sc.sentCl, 0)
	sc.sentTk = append(sc.sentTk, int32(len(sc.toks)))
}

// scan makes one pass over s: the lowercased copy, the vocabulary words with their sentences,
// and the features.
func (sc *scratch) scan(s string) features {
	var f features
	if cap(sc.lower) < len(s) {
		sc.lower = make([]byte, len(s), len(s)+len(s)/2)
	}
	lower := sc.lower[:len(s)]
	sc.lower = lower
	sc.toks = sc.toks[:0]
	sc.sents = append(sc.sents[:0], 0)
	sc.sentCl = append(sc.sentCl[:0], 0)
	sc.sentTk = append(sc.sentTk[:0], 0)

	st := scanState{wstart: -1}
	// Locals, not f's fields, for what changes on every byte: f's address is taken below.
	var run, b64, hexRun, maxRun, maxB64, maxHex, digits int
	var classes uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		k := byteClass[c]
		lc := lowerByte[c]
		lower[i] = lc
		// Run lengths without branches: reset to 0 when the byte is not of the class.
		run = (run + 1) & -int(k>>1&1)
		b64 = (b64 + 1) & -int(k>>2&1)
		hexRun = (hexRun + 1) & -int(k>>3&1)
		maxRun = max(maxRun, run)
		maxB64 = max(maxB64, b64)
		maxHex = max(maxHex, hexRun)
		digits += int(k >> 4 & 1)

		if k&bWord != 0 {
			if c >= 0x80 {
				f.nonASCII = true
				// ’ is an apostrophe inside words; “ ” and other punctuation end them.
				if c == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 {
					switch s[i+2] {
					case 0x99:
						if st.wstart < 0 {
							st.wstart = i
							st.h = fnvOffset
						}
						st.h = (st.h ^ '\'') * fnvPrime
						lower[i+1], lower[i+2] = s[i+1], s[i+2]
						i += 2
						continue
					case 0x8B, 0x8C, 0x8D, 0x9C, 0x9D, 0x98, 0x94, 0x93, 0xA6:
						// zero-width characters, quotes, dashes, ellipsis
						if st.wstart >= 0 {
							classes |= sc.endWord(&st, i)
						}
						lower[i+1], lower[i+2] = s[i+1], s[i+2]
						i += 2
						continue
					}
				}
				if c == 0xC2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9F {
					f.ctrl = true // a C1 control
				}
			}
			if st.wstart < 0 {
				st.wstart = i
				st.h = fnvOffset
			}
			st.h = (st.h ^ uint64(lc)) * fnvPrime
			continue
		}
		if st.wstart >= 0 {
			classes |= sc.endWord(&st, i)
		}
		if k&bSpecial == 0 {
			continue
		}
		switch c {
		case '.', '!', '?':
			if i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\n' || s[i+1] == '"' || s[i+1] == '\t' {
				sc.endSentence(&st, i+1)
			}
		case '\n':
			f.newline = true
			sc.endSentence(&st, i+1)
		case '%':
			if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
				f.pct++
			}
		case '\\':
			if i+3 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') && isHex(s[i+2]) && isHex(s[i+3]) {
				f.bsx++
			}
		case 0x1b:
			f.esc = true
		case '\t':
		case '\r':
			if i+1 == len(s) || s[i+1] != '\n' {
				f.ctrl = true // a bare carriage return can overwrite a terminal line
			}
		default:
			f.ctrl = true // other C0 controls and DEL
		}
	}
	if st.wstart >= 0 {
		classes |= sc.endWord(&st, len(s))
	}
	f.classes |= classes
	f.maxRun, f.maxB64, f.maxHex, f.digits = maxRun, maxB64, maxHex, digits
	f.words = int(st.word)
	if len(lower) > 0 {
		// Valid until the next scan; detectors copy what they keep.
		sc.ls = unsafe.String(&lower[0], len(lower))
	} else {
		sc.ls = ""
	}
	ls := sc.ls
	// Rarer features: one vectorised search each beats a test per byte.
	f.at = strings.IndexByte(ls, '@') >= 0
	f.lt = strings.IndexByte(ls, '<') >= 0
	f.tagish = f.lt || strings.IndexByte(ls, '[') >= 0 || strings.IndexByte(ls, '#') >= 0
	f.scheme = strings.Contains(ls, "://")
	f.www = strings.Contains(ls, "www.")
	f.imgMD = strings.Contains(ls, "![")
	f.dashes = strings.Contains(ls, "-----")
	return f
}

func isHex(c byte) bool { return byteClass[c]&bHex != 0 }
