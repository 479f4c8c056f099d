package identity

import (
	"net/url"
	"strings"
)

// maxBaggageBytes is the W3C limit on a baggage header; longer values are not read.
const maxBaggageBytes = 8192

// BaggageValue returns the value of key in a W3C baggage header value ("k1=v1;prop,k2=v2"),
// percent-decoded, or "" when it is absent or malformed.
func BaggageValue(baggage, key string) string {
	if len(baggage) > maxBaggageBytes {
		return ""
	}
	for member := range strings.SplitSeq(baggage, ",") {
		kv, _, _ := strings.Cut(member, ";") // properties are not needed
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) != key {
			continue
		}
		v, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return ""
		}
		return v
	}
	return ""
}
