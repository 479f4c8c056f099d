package store_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Closing a store must stop every goroutine its connection pools started.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
