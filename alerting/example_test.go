package alerting_test

import (
	"bytes"
	"crypto/hmac"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/mcpwatch/mcpwatch/alerting"
)

// A receiver verifies a signed webhook by recomputing the signature over the timestamp and the
// raw body with the shared secret, comparing in constant time, and refusing stale timestamps so
// a captured request cannot be replayed later.
func ExampleSign() {
	const secret = "shared-secret"
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		ts := r.Header.Get(alerting.HeaderTimestamp)
		want := alerting.Sign(secret, ts, body)
		if !hmac.Equal([]byte(r.Header.Get(alerting.HeaderSignature)), []byte(want)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
			http.Error(w, "stale timestamp", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent) // then drop duplicates by X-Mcpwatch-Delivery
	})

	post := func(signWith string, ts time.Time) int {
		body := []byte(`{"anomaly_id":"7d2f1c7e-0b1a-8c3e-9f00-1b2c3d4e5f60"}`)
		unix := strconv.FormatInt(ts.Unix(), 10)
		req := httptest.NewRequest(http.MethodPost, "/mcpwatch", bytes.NewReader(body))
		req.Header.Set(alerting.HeaderTimestamp, unix)
		req.Header.Set(alerting.HeaderSignature, alerting.Sign(signWith, unix, body))
		rec := httptest.NewRecorder()
		receiver.ServeHTTP(rec, req)
		return rec.Code
	}
	fmt.Println(post(secret, time.Now()))
	fmt.Println(post("guessed", time.Now()))
	fmt.Println(post(secret, time.Now().Add(-time.Hour)))
	fmt.Println(alerting.Sign(secret, "1700000000", []byte("{}")))
	// Output:
	// 204
	// 401
	// 401
	// sha256=5d7dd1c193d93142945a3676ff4e73821d15a61c43677e189398a6c1e5b63a75
}
