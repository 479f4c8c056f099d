package inspect

import (
	"strings"
	"unsafe"
)

// scratch is the reusable memory of one inspection; a pool keeps them.
type scratch struct {
	job    job
	lower  []byte  // ASCII-lowercased copy of the string being inspected
	ls     string  // lower as a string (sharing its memory)
	dec    []byte  // a JSON string's decoded value
	toks   []token // the words of the vocabulary found in the string
	sents  []int32 // byte offset where each sentence starts
	spans  []span
	rules  []string
	counts [8]int
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
	at       int  // '@'
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
	bWord  = 1 << iota // part of a word: letters, digits, _ and '
	bRun               // token character: [A-Za-z0-9_+/=.~-]
	bB64               // base64 character: [A-Za-z0-9+/=_-]
	bHex               // hex digit
	bDigit             // decimal digit
)

var byteClass [256]uint8

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
			k = bRun
		case c >= 0x80:
			k = bWord // UTF-8: letters of other scripts belong to words
		}
		byteClass[c] = k
	}
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	maxWord   = 24 // longer words are not in the vocabulary
)

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

	var (
		wstart                        = -1
		h                      uint64 = fnvOffset
		word                   int32
		sent                   int32
		sw                     int32 // first word of the current sentence
		run, b64, hexRun, dash int
		endWord                = func(end int) {
			if n := end - wstart; n >= 2 && n <= maxWord && vocabMaybe(h) {
				if cls, ok := vocab[h]; ok {
					sc.toks = append(sc.toks, token{h: h, cls: cls, w: word, sent: sent, sw: sw, start: int32(wstart), end: int32(end)})
					f.classes |= cls
				}
			}
			word++
			wstart = -1
		}
		endSentence = func(next int) {
			sent++
			sw = word
			sc.sents = append(sc.sents, int32(next))
		}
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		k := byteClass[c]
		lc := c
		if c >= 'A' && c <= 'Z' {
			lc = c + 'a' - 'A'
		}
		lower[i] = lc

		if k&bRun != 0 {
			run++
			if run > f.maxRun {
				f.maxRun = run
			}
		} else {
			run = 0
		}
		if k&bB64 != 0 {
			b64++
			if b64 > f.maxB64 {
				f.maxB64 = b64
			}
		} else {
			b64 = 0
		}
		if k&bHex != 0 {
			hexRun++
			if hexRun > f.maxHex {
				f.maxHex = hexRun
			}
		} else {
			hexRun = 0
		}
		if c == '-' {
			dash++
			if dash >= 5 {
				f.dashes = true
			}
		} else {
			dash = 0
		}
		if k&bDigit != 0 {
			f.digits++
		}

		if k&bWord != 0 {
			if c >= 0x80 {
				f.nonASCII = true
				// ’ is an apostrophe inside words; “ ” and other punctuation end them.
				if c == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 {
					switch s[i+2] {
					case 0x99:
						if wstart < 0 {
							wstart = i
							h = fnvOffset
						}
						h = (h ^ '\'') * fnvPrime
						lower[i+1], lower[i+2] = s[i+1], s[i+2]
						i += 2
						continue
					case 0x8B, 0x8C, 0x8D, 0x9C, 0x9D, 0x98, 0x94, 0x93, 0xA6:
						// zero-width characters, quotes, dashes, ellipsis
						if wstart >= 0 {
							endWord(i)
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
			if wstart < 0 {
				wstart = i
				h = fnvOffset
			}
			h = (h ^ uint64(lc)) * fnvPrime
			continue
		}
		if wstart >= 0 {
			endWord(i)
		}
		switch c {
		case '.', '!', '?':
			if i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\n' || s[i+1] == '"' || s[i+1] == '\t' {
				endSentence(i + 1)
			}
			if c == '!' && i+1 < len(s) && s[i+1] == '[' {
				f.imgMD = true
			}
		case '\n':
			f.newline = true
			endSentence(i + 1)
		case '@':
			f.at++
		case ':':
			if i+2 < len(s) && s[i+1] == '/' && s[i+2] == '/' {
				f.scheme = true
			}
		case '<':
			f.lt, f.tagish = true, true
		case '[', '#':
			f.tagish = true
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
		case '\t', '\r', ' ':
			if c == '\r' && (i+1 == len(s) || s[i+1] != '\n') {
				f.ctrl = true // a bare carriage return can overwrite a terminal line
			}
		default:
			if c < 0x20 || c == 0x7f {
				f.ctrl = true
			}
		}
	}
	if wstart >= 0 {
		endWord(len(s))
	}
	f.words = int(word)
	if len(lower) > 0 {
		// Valid until the next scan; detectors copy what they keep.
		sc.ls = unsafe.String(&lower[0], len(lower))
	} else {
		sc.ls = ""
	}
	f.www = strings.Contains(sc.ls, "www.")
	return f
}

func isHex(c byte) bool { return byteClass[c]&bHex != 0 }
