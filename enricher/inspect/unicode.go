package inspect

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// hiddenUnicode flags characters that do not show but change what a model or a terminal
// reads: Unicode tag characters (which spell ASCII text invisibly, decoded and inspected in
// their own right), bidirectional overrides (text shown in another order than it is read),
// zero-width and other invisible characters, and runs of variation selectors (which can carry
// bytes). Their legitimate uses are spared: tag sequences of subdivision flag emoji, joiners
// inside emoji sequences and inside scripts that need them, one variation selector after a
// character.
func (j *job) hiddenUnicode(s string, decoded []decodedText) []decodedText {
	var (
		tagText          []byte
		tagStart, tagEnd = -1, 0
		tags             int
		bidi, bidiAt     = 0, -1
		invisible, invAt = 0, -1
		vsMax, vsAt      = 0, -1
		vsRun, vsBytes   []byte // the current run of variation selectors; the runs of 2 or more
		vsRunAt          int
		rtl              bool
		prev             rune
		inFlag           bool // inside a subdivision flag's tag sequence (after U+1F3F4)
	)
	endVS := func() {
		if len(vsRun) >= 2 { // one selector after a character is ordinary
			vsBytes = append(vsBytes, vsRun...)
			vsMax = max(vsMax, len(vsRun))
			if vsAt < 0 {
				vsAt = vsRunAt
			}
		}
		vsRun = vsRun[:0]
	}
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf && len(vsRun) == 0 {
			prev = rune(s[i])
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r >= 0xFE00 && r <= 0xFE0F || r >= 0xE0100 && r <= 0xE01EF {
			if len(vsRun) == 0 {
				vsRunAt = i
			}
			vsRun = append(vsRun, vsByte(r))
			prev = r
			i += size
			continue
		}
		if len(vsRun) > 0 {
			endVS()
		}
		if r < 0x80 {
			prev = r
			i += size
			continue
		}
		next, _ := utf8.DecodeRuneInString(s[i+size:])
		switch {
		case r >= 0xE0000 && r <= 0xE007F:
			if prev == 0x1F3F4 {
				inFlag = true
			}
			if inFlag {
				if r == 0xE007F {
					inFlag = false
				}
				break
			}
			tags++
			if tagStart < 0 {
				tagStart = i
			}
			tagEnd = i + size
			if c := r - 0xE0000; c >= 0x20 && c < 0x7F || c == '\n' {
				tagText = append(tagText, byte(c))
			}
		case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x061C:
			bidi++
			if bidiAt < 0 {
				bidiAt = i
			}
		case r == 0x200D || r == 0x200C:
			// Joiners belong inside emoji sequences and in scripts that shape with them.
			if !(isEmojiish(prev) && isEmojiish(next)) && !(joinScript(prev) && joinScript(next)) {
				invisible++
				if invAt < 0 {
					invAt = i
				}
			}
		case r == 0x200B, r == 0x2060, r == 0x180E, r >= 0x2061 && r <= 0x2064, r >= 0x206A && r <= 0x206F,
			r == 0xFEFF && i > 0, r == 0x115F, r == 0x1160, r == 0x3164, r == 0xFFA0, r == 0x034F,
			r == 0x17B4, r == 0x17B5, r >= 0xFFF9 && r <= 0xFFFB:
			invisible++
			if invAt < 0 {
				invAt = i
			}
		case r >= 0x0590 && r <= 0x08FF, r >= 0xFB1D && r <= 0xFDFF, r >= 0xFE70 && r <= 0xFEFE:
			rtl = true
		}
		prev = r
		i += size
	}
	endVS()

	if tags > 0 {
		sev := schemas.SeverityMedium
		if len(tagText) > 0 {
			sev = schemas.SeverityHigh
		}
		j.add(TypeHiddenUnicode, sev, "rule=tag_characters count="+strconv.Itoa(tags)+" ascii="+strconv.Itoa(len(tagText))+" "+loc(tagStart, tagEnd))
		if len(tagText) > 0 {
			decoded = append(decoded, decodedText{via: "tag_text@" + strconv.Itoa(tagStart) + ": ", text: string(tagText)})
		}
	}
	if bidi > 0 {
		sev := schemas.SeverityMedium
		if rtl {
			sev = schemas.SeverityLow // right-to-left text uses them legitimately, now and then
		}
		j.add(TypeHiddenUnicode, sev, "rule=bidi_control count="+strconv.Itoa(bidi)+" at="+strconv.Itoa(bidiAt))
	}
	if invisible > 0 {
		sev := schemas.SeverityLow
		if invisible >= 3 {
			sev = schemas.SeverityMedium
		}
		j.add(TypeHiddenUnicode, sev, "rule=invisible count="+strconv.Itoa(invisible)+" at="+strconv.Itoa(invAt))
	}
	if vsAt >= 0 {
		j.add(TypeHiddenUnicode, schemas.SeverityMedium, "rule=variation_selectors longest_run="+strconv.Itoa(vsMax)+" at="+strconv.Itoa(vsAt))
		if text := printableText(vsBytes); text != "" {
			decoded = append(decoded, decodedText{via: "variation_selectors@" + strconv.Itoa(vsAt) + ": ", text: text})
		}
	}
	return decoded
}

// vsByte is the byte a variation selector stands for in the usual smuggling scheme: VS1–16
// are 0–15, VS17–256 are 16–255.
func vsByte(r rune) byte {
	if r <= 0xFE0F {
		return byte(r - 0xFE00)
	}
	return byte(r - 0xE0100 + 16)
}

// isEmojiish reports whether r takes part in emoji sequences.
func isEmojiish(r rune) bool {
	return r >= 0x1F000 && r <= 0x1FAFF || r >= 0x2600 && r <= 0x27BF || r == 0xFE0F || r >= 0x2190 && r <= 0x21FF ||
		r >= 0x2B00 && r <= 0x2BFF || r == 0x2640 || r == 0x2642 || r >= 0x1F3FB && r <= 0x1F3FF || r == 0x200D
}

// joinScript reports whether r belongs to a script where ZWJ and ZWNJ shape text (Arabic,
// Persian, Indic, Sinhala, …).
func joinScript(r rune) bool {
	return r >= 0x0600 && r <= 0x06FF || r >= 0x0750 && r <= 0x077F || r >= 0x0900 && r <= 0x0DFF ||
		r >= 0xFB50 && r <= 0xFDFF || r >= 0xFE70 && r <= 0xFEFF || r >= 0x1000 && r <= 0x109F
}

// printableText returns b as text when it is valid UTF-8 and mostly printable, else "".
func printableText(b []byte) string {
	if len(b) < 4 || !utf8.Valid(b) {
		return ""
	}
	var good, total int
	for _, r := range string(b) {
		total++
		if unicode.IsPrint(r) || r == '\n' || r == '\t' || r == '\r' {
			good++
		}
	}
	if good*10 < total*9 {
		return ""
	}
	return string(b)
}

// control flags terminal escape sequences and control characters. An escape sequence can
// recolour, hide, move or overwrite what a person sees in a terminal, set a window title,
// plant a hyperlink or write the clipboard (OSC 52); bare control characters can hide text
// (carriage return, backspace) or break parsers.
func (j *job) control(s string) {
	var (
		sgr, csi, osc, clip, other int
		escAt                      = -1
		ctrl                       int
		ctrlAt                     = -1
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0x1b:
			if escAt < 0 {
				escAt = i
			}
			if i+1 >= len(s) {
				other++
				continue
			}
			switch s[i+1] {
			case '[':
				k := i + 2
				for k < len(s) && s[k] >= 0x20 && s[k] <= 0x3F {
					k++
				}
				if k < len(s) && s[k] == 'm' {
					sgr++
				} else {
					csi++
				}
				i = k
			case ']':
				end := strings.IndexAny(s[i:], "\x07\x1b")
				if strings.HasPrefix(s[i+2:], "52;") {
					clip++
				} else {
					osc++
				}
				if end > 0 {
					i += end - 1
				}
			default:
				other++
				i++
			}
		case c == 0xC2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9F:
			if s[i+1] == 0x9B || s[i+1] == 0x9D {
				csi++ // C1 CSI and OSC
				if escAt < 0 {
					escAt = i
				}
			} else {
				ctrl++
				if ctrlAt < 0 {
					ctrlAt = i
				}
			}
			i++
		case c == '\r' && (i+1 == len(s) || s[i+1] != '\n'), c < 0x20 && c != '\t' && c != '\n' && c != '\r', c == 0x7f:
			ctrl++
			if ctrlAt < 0 {
				ctrlAt = i
			}
		}
	}
	if n := sgr + csi + osc + clip + other; n > 0 {
		sev := schemas.SeverityLow // colours only
		switch {
		case clip > 0:
			sev = schemas.SeverityHigh
		case csi+osc+other > 0:
			sev = schemas.SeverityMedium
		}
		ev := "sgr=" + strconv.Itoa(sgr) + " csi=" + strconv.Itoa(csi) + " osc=" + strconv.Itoa(osc) + " clipboard=" + strconv.Itoa(clip)
		if other > 0 {
			ev += " other=" + strconv.Itoa(other)
		}
		j.add(TypeANSIEscape, sev, ev+" at="+strconv.Itoa(escAt))
	}
	if ctrl > 0 {
		j.add(TypeControlChar, schemas.SeverityLow, "count="+strconv.Itoa(ctrl)+" at="+strconv.Itoa(ctrlAt))
	}
}
