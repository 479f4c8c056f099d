//go:build !unix

package stdiotap

import "os"

func signaled(*os.ProcessState) (int, bool) { return 0, false }
