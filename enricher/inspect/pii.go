package inspect

import (
	"strings"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// pii finds personal data: email addresses, phone numbers (international with +, or North
// American shapes), payment card numbers that pass the Luhn check with a known issuer prefix,
// and IBANs whose mod-97 check holds. Evidence carries the rule, where, and a keyed hash.
func (j *job) pii(s string, f *features, skip []span) {
	flag := func(rule string, sev schemas.Severity, start, end int) {
		j.add(TypePII, sev, "rule="+rule+" "+loc(start, end)+" hash="+j.hash(s[start:end]))
	}
	if f.at {
		for from := 0; from < len(s); {
			k := strings.IndexByte(s[from:], '@')
			if k < 0 {
				break
			}
			at := from + k
			from = at + 1
			if start, end, ok := email(s, at); ok && !inSpans(skip, start) {
				flag("email", schemas.SeverityLow, start, end)
				from = end
			}
		}
	}
	if f.digits < 7 {
		return
	}
	for i := 0; i < len(s) && !j.full(); {
		c := s[i]
		switch {
		case c == '+' || c == '(' || isDigit(c):
			if i > 0 && (byteClass[s[i-1]]&(bWord|bDigit) != 0 || s[i-1] == '.' || s[i-1] == '-' || s[i-1] == '/') {
				i++
				continue
			}
			if inSpans(skip, i) {
				i++
				continue
			}
			if end, ok := card(s, i); ok {
				flag("card", schemas.SeverityMedium, i, end)
				i = end
				continue
			}
			if end, ok := phone(s, i); ok {
				flag("phone", schemas.SeverityLow, i, end)
				i = end
				continue
			}
		case c >= 'A' && c <= 'Z' && i+1 < len(s) && s[i+1] >= 'A' && s[i+1] <= 'Z':
			if i == 0 || byteClass[s[i-1]]&bWord == 0 {
				if end, ok := iban(s, i); ok {
					flag("iban", schemas.SeverityMedium, i, end)
					i = end
					continue
				}
			}
		}
		i++
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// email returns the address around the '@' at at.
func email(s string, at int) (int, int, bool) {
	start := at
	for start > 0 {
		c := s[start-1]
		if byteClass[c]&(bWord|bDigit) != 0 && c < 0x80 && c != '\'' || c == '.' || c == '%' || c == '+' || c == '-' {
			start--
			continue
		}
		break
	}
	end := at + 1
	lastDot := -1
	for end < len(s) {
		c := s[end]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '-' {
			end++
			continue
		}
		if c == '.' && end+1 < len(s) && (byteClass[s[end+1]]&bWord != 0 && s[end+1] < 0x80) {
			lastDot = end
			end++
			continue
		}
		break
	}
	if start == at || lastDot < 0 || s[start] == '.' {
		return 0, 0, false
	}
	tld := s[lastDot+1 : end]
	if len(tld) < 2 {
		return 0, 0, false
	}
	for i := 0; i < len(tld); i++ {
		if !(tld[i] >= 'a' && tld[i] <= 'z' || tld[i] >= 'A' && tld[i] <= 'Z') {
			return 0, 0, false // lodash@4.17.21, user@10.0.0.1
		}
	}
	if start > 0 && (s[start-1] == '/' || s[start-1] == ':') || end < len(s) && s[end] == ':' {
		return 0, 0, false // user@host in a URL, git@host:repo
	}
	return start, end, true
}

// card reads 13–19 digits from i, in groups separated by single spaces or dashes, and accepts
// them when they pass the Luhn check and start like a card of a known network.
func card(s string, i int) (int, bool) {
	var digits [19]byte
	n := 0
	k := i
	for k < len(s) {
		c := s[k]
		if isDigit(c) {
			if n == len(digits) {
				return 0, false
			}
			digits[n] = c - '0'
			n++
			k++
			continue
		}
		if (c == ' ' || c == '-') && n > 0 && k+1 < len(s) && isDigit(s[k+1]) {
			k++
			continue
		}
		break
	}
	if n < 13 || (k < len(s) && (byteClass[s[k]]&bWord != 0 || s[k] == '.')) {
		return 0, false
	}
	d := digits[:n]
	if !cardPrefix(d) || allSame(d) {
		return 0, false
	}
	sum := 0
	for idx := n - 1; idx >= 0; idx-- {
		v := int(d[idx])
		if (n-1-idx)%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return k, sum%10 == 0
}

func allSame(d []byte) bool {
	for _, x := range d {
		if x != d[0] {
			return false
		}
	}
	return true
}

// cardPrefix: Visa 4, Mastercard 51–55 and 2221–2720, Amex 34/37, Discover 6011/644–649/65,
// JCB 3528–3589, Diners 300–305/36/38, UnionPay 62.
func cardPrefix(d []byte) bool {
	p2 := int(d[0])*10 + int(d[1])
	p4 := p2*100 + int(d[2])*10 + int(d[3])
	n := len(d)
	switch {
	case d[0] == 4:
		return n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720:
		return n == 16
	case p2 == 34 || p2 == 37:
		return n == 15
	case p4 == 6011, p2 == 65, p4/10 >= 644 && p4/10 <= 649, p2 == 62:
		return n >= 16
	case p4 >= 3528 && p4 <= 3589:
		return n >= 16
	case p4/10 >= 300 && p4/10 <= 305, p2 == 36, p2 == 38:
		return n >= 14
	}
	return false
}

// phone reads a phone number from i: +CC then 7–14 more digits, or (NNN) NNN-NNNN,
// NNN-NNN-NNNN, NNN.NNN.NNNN.
func phone(s string, i int) (int, bool) {
	if s[i] == '+' {
		n, k := 0, i+1
		for k < len(s) {
			c := s[k]
			if isDigit(c) {
				n++
				k++
				continue
			}
			if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') && k+1 < len(s) && (isDigit(s[k+1]) || s[k+1] == '(') {
				k++
				continue
			}
			break
		}
		if n < 8 || n > 15 || s[i+1] == '0' || (k < len(s) && byteClass[s[k]]&bWord != 0) {
			return 0, false
		}
		return k, true
	}
	// (NNN) NNN-NNNN
	if s[i] == '(' {
		if i+14 <= len(s) && digitsAt(s, i+1, 3) && s[i+4] == ')' && s[i+5] == ' ' && digitsAt(s, i+6, 3) && s[i+9] == '-' && digitsAt(s, i+10, 4) {
			return i + 14, endsNumber(s, i+14)
		}
		return 0, false
	}
	if i+12 <= len(s) && digitsAt(s, i, 3) && (s[i+3] == '-' || s[i+3] == '.') && digitsAt(s, i+4, 3) && s[i+7] == s[i+3] && digitsAt(s, i+8, 4) {
		return i + 12, endsNumber(s, i+12)
	}
	return 0, false
}

func digitsAt(s string, i, n int) bool {
	if i+n > len(s) {
		return false
	}
	for k := i; k < i+n; k++ {
		if !isDigit(s[k]) {
			return false
		}
	}
	return true
}

func endsNumber(s string, k int) bool {
	return k == len(s) || byteClass[s[k]]&(bWord|bDigit) == 0 && s[k] != '-' && s[k] != '.' || s[k] == '.' && (k+1 == len(s) || !isDigit(s[k+1]))
}

// ibanLengths are the IBAN lengths of the countries that use it.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
	"BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
	"ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
	"HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
	"LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
	"MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
	"RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
	"TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

// iban reads an IBAN from i (groups of four may be separated by single spaces) and checks its
// length for the country and its mod-97 checksum.
func iban(s string, i int) (int, bool) {
	want, ok := ibanLengths[s[i:i+2]]
	if !ok || i+4 > len(s) || !isDigit(s[i+2]) || !isDigit(s[i+3]) {
		return 0, false
	}
	var buf [34]byte
	n, k := 0, i
	for k < len(s) && n < want {
		c := s[k]
		switch {
		case isDigit(c) || c >= 'A' && c <= 'Z':
			buf[n] = c
			n++
			k++
		case c == ' ' && n%4 == 0 && k+1 < len(s) && (isDigit(s[k+1]) || s[k+1] >= 'A' && s[k+1] <= 'Z'):
			k++
		default:
			return 0, false
		}
	}
	if n != want || (k < len(s) && (isDigit(s[k]) || s[k] >= 'A' && s[k] <= 'Z' || s[k] >= 'a' && s[k] <= 'z')) {
		return 0, false
	}
	// Move the country and check digits to the end; letters count 10–35; the value mod 97 is 1.
	rem := 0
	for idx := 0; idx < n; idx++ {
		c := buf[(idx+4)%n]
		if c >= 'A' {
			rem = (rem*100 + int(c-'A') + 10) % 97
		} else {
			rem = (rem*10 + int(c-'0')) % 97
		}
	}
	return k, rem == 1
}
