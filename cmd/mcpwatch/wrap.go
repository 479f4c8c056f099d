package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mcpwatch/mcpwatch/collector/ingest"
	"github.com/mcpwatch/mcpwatch/collector/stdiotap"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

const wrapUsage = `Usage:
  mcpwatch wrap [--agent ID] [--server NAME] [--mcpwatch URL] [--token T] [--spool-dir DIR]
                [--ca-file FILE] [--cert-file FILE --key-file FILE] -- CMD [ARGS...]

Runs the stdio MCP server CMD in place of the client launching it, relays stdin, stdout and
stderr byte for byte, passes SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 on to the
server's process group, and exits with the server's exit code (128+N when signal N killed it;
127 when CMD cannot be found). Every MCP operation it
sees becomes an event sent to a running mcpwatch (its collector listener, by default
http://127.0.0.1:7400); while mcpwatch is unreachable events wait on disk and are sent later.
In an MCP client's configuration, make the command "mcpwatch" and put "wrap", its flags, "--"
and the original command and arguments in front of the arguments. For an https:// URL,
--ca-file trusts a private CA and --cert-file/--key-file present a client certificate
(collector.http.tls with client_ca_file). The server inherits wrap's environment less the
variables named below, which are wrap's own (the ingest token stays with wrap).

Flags:
`

// Environment variables wrap reads when the flag is not given: MCP client configs set them
// in a server's "env", which keeps a token off the command line and lets one block of settings
// serve every wrapped server. INGEST keeps them apart from the query commands' API settings.
const (
	envWrapURL      = "MCPWATCH_URL"
	envWrapToken    = "MCPWATCH_INGEST_TOKEN"
	envWrapCAFile   = "MCPWATCH_INGEST_CA_FILE"
	envWrapCertFile = "MCPWATCH_INGEST_CERT_FILE"
	envWrapKeyFile  = "MCPWATCH_INGEST_KEY_FILE"
)

// wrapEnv are the variables meant for wrap: the server does not inherit them, so a server
// (or whatever it runs) never sees the ingest token, nor where mcpwatch and its keys are.
var wrapEnv = []string{envWrapURL, envWrapToken, envWrapCAFile, envWrapCertFile, envWrapKeyFile}

func runWrap(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	agent := fs.String("agent", "", "attribute every call to agent `ID` (default: the client's clientInfo name)")
	server := fs.String("server", "", "server `NAME` in events (default: from the command, e.g. server-filesystem for npx @modelcontextprotocol/server-filesystem)")
	// The default is shown without its password; the flag's own default stays empty for that.
	url := fs.String("mcpwatch", "", fmt.Sprintf("running mcpwatch's collector `URL` (env %s) (default %q)",
		envWrapURL, ingest.RedactURL(envOr(envWrapURL, ingest.DefaultURL))))
	token := fs.String("token", "", "bearer `TOKEN` for mcpwatch's ingest endpoint (collector.ingest.token; env "+envWrapToken+")")
	caFile := fs.String("ca-file", "", "PEM `FILE` of the CAs trusted for an https:// --mcpwatch URL, instead of the system's (env "+envWrapCAFile+")")
	certFile := fs.String("cert-file", "", "PEM client certificate `FILE` for an mcpwatch that requires one; needs --key-file (env "+envWrapCertFile+")")
	keyFile := fs.String("key-file", "", "PEM `FILE` of the --cert-file certificate's private key (env "+envWrapKeyFile+")")
	spoolDir := fs.String("spool-dir", "", "`DIR` where events wait while mcpwatch is unreachable (default $XDG_STATE_HOME/mcpwatch/spool or ~/.local/state/mcpwatch/spool)")
	spoolMax := fs.Int64("spool-max-bytes", 256<<20, "most `BYTES` of events kept on disk by one wrap")
	flushTimeout := fs.Duration("flush-timeout", 2*time.Second, "how long to keep sending events after the server exits (the rest is sent by a later wrap)")
	logLevel := fs.String("log-level", "warn", "log `LEVEL` on stderr: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), wrapUsage)
		fs.PrintDefaults()
	}
	if code, done := parseFlagsAllowingCommand(fs, args, stdout); done {
		return code
	}
	command := fs.Args()
	if len(command) == 0 {
		fmt.Fprintln(stderr, "mcpwatch wrap: no server command given (mcpwatch wrap [flags] -- CMD [ARGS...])")
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "mcpwatch wrap: --log-level: must be debug, info, warn or error, got %q\n", *logLevel)
		return exitUsage
	}
	if *flushTimeout < 0 {
		fmt.Fprintf(stderr, "mcpwatch wrap: --flush-timeout: must not be negative, got %s\n", *flushTimeout)
		return exitUsage
	}
	for _, f := range []struct {
		v   *string
		env string
	}{{url, envWrapURL}, {token, envWrapToken}, {caFile, envWrapCAFile}, {certFile, envWrapCertFile}, {keyFile, envWrapKeyFile}} {
		if *f.v == "" {
			*f.v = os.Getenv(f.env)
		}
	}
	if *url == "" {
		*url = ingest.DefaultURL
	}
	if *spoolDir == "" {
		*spoolDir = defaultSpoolDir()
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("mcpwatch", "wrap")
	set := pipeline.Settings{Logger: logger}

	tapCfg := stdiotap.Config{AgentID: *agent, ServerID: *server}
	if err := tapCfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "mcpwatch wrap:", err)
		return exitUsage
	}
	clientCfg := ingest.ClientConfig{URL: *url, Token: *token, CAFile: *caFile, CertFile: *certFile, KeyFile: *keyFile,
		SpoolDir: *spoolDir, MaxSpoolBytes: *spoolMax}
	if err := clientCfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "mcpwatch wrap:", err)
		return exitUsage
	}
	// A certificate file that cannot be used is a mistake in the flags, not mcpwatch being
	// away: say so now rather than spool every event of the session.
	if _, err := clientCfg.TLSConfig(); err != nil {
		fmt.Fprintln(stderr, "mcpwatch wrap:", err)
		return exitUsage
	}

	// The server runs whatever happens to mcpwatch: without a spool, events are only counted.
	var emitter pipeline.EventEmitter = discardEmitter{}
	client, err := ingest.NewClient(clientCfg, set)
	if err != nil {
		logger.Error("events of this session will not be recorded", "err", err)
	} else {
		emitter = client
		_ = client.Start(ctx)
	}
	tap, err := stdiotap.New(tapCfg, emitter, set)
	if err != nil {
		fmt.Fprintln(stderr, "mcpwatch wrap:", err)
		return exitUsage
	}

	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = serverEnv(os.Environ())
	cmd.Stderr = stderr
	ownProcessGroup(cmd)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, forwardedSignals...)
	defer signal.Stop(sigs)
	// A client that went away must not kill wrap before it flushed: writes then fail instead.
	pipes := make(chan os.Signal, 1)
	signal.Notify(pipes, syscall.SIGPIPE)
	defer signal.Stop(pipes)

	// Signals are forwarded, not obeyed: only the server's exit ends the run.
	code, err := tap.Run(context.WithoutCancel(ctx), stdiotap.Process{Cmd: cmd, Stdin: stdin, Stdout: stdout, Signals: sigs})
	if err != nil {
		fmt.Fprintln(stderr, "mcpwatch wrap:", err)
	}
	if n := tap.UnobservedBytes(); n > 0 {
		logger.Warn("traffic relayed but not observed: the parser fell behind", "bytes", n)
	}
	if client != nil {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), *flushTimeout)
		if err := client.Shutdown(flushCtx); err != nil {
			logger.Warn("cannot close the event spool", "err", err)
		}
		cancel()
		if n := client.Dropped(); n > 0 {
			logger.Warn("events lost", "events", n)
		}
	}
	return code
}

// parseFlagsAllowingCommand is parseFlags for a command line ending in "-- CMD ARGS…" (or
// just CMD ARGS…: flag parsing stops at the first non-flag).
func parseFlagsAllowingCommand(fs *flag.FlagSet, args []string, stdout io.Writer) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return exitOK, true
		}
		return exitUsage, true
	}
	return 0, false
}

// serverEnv is environ without wrapEnv.
func serverEnv(environ []string) []string {
	return slices.DeleteFunc(environ, func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.ContainsFunc(wrapEnv, func(w string) bool {
			return name == w || runtime.GOOS == "windows" && strings.EqualFold(name, w) // names ignore case there
		})
	})
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// defaultSpoolDir follows the XDG base directory spec for state.
func defaultSpoolDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "mcpwatch", "spool")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "mcpwatch", "spool")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("mcpwatch-spool-%d", os.Getuid()))
}

// discardEmitter stands in when events cannot be spooled, so the server still runs.
type discardEmitter struct{}

func (discardEmitter) Emit(schemas.Event) {}
