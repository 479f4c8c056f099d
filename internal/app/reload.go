package app

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// reloadOnSIGHUP calls reload for every SIGHUP the process receives, until the returned stop
// is called; meanwhile SIGHUP no longer ends the process. reload logs and counts its own
// errors (an invalid file keeps its last good version).
func reloadOnSIGHUP(reload func() error, log *slog.Logger) (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP)
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-sigs:
				log.Info("SIGHUP: reloading the policy and inventory files")
				_ = reload()
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
		<-finished
	}
}
