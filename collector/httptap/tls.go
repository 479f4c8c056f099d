package httptap

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// keyPairCheckInterval is how often a key pair's files are checked for a new version.
const keyPairCheckInterval = 5 * time.Second

// keyPair is a certificate and key loaded from files and reloaded when they change, so
// short-lived certificates (SPIFFE SVIDs, cert-manager) rotate without a restart.
type keyPair struct {
	certFile, keyFile string
	log               *slog.Logger
	interval          time.Duration // keyPairCheckInterval

	mu       sync.Mutex
	cert     *tls.Certificate
	modTimes [2]time.Time
	checked  time.Time
}

func loadKeyPair(certFile, keyFile string, log *slog.Logger) (*keyPair, error) {
	k := &keyPair{certFile: certFile, keyFile: keyFile, log: log, interval: keyPairCheckInterval}
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *keyPair) load() error {
	mods, err := modTimes(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("cannot load TLS key pair: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("cannot load TLS key pair: %w", err)
	}
	k.cert, k.modTimes = &cert, mods
	return nil
}

// get returns the current certificate, reloading it first if its files changed. A reload that
// fails keeps the previous certificate (the files may be mid-rotation).
func (k *keyPair) get() *tls.Certificate {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now := time.Now(); now.Sub(k.checked) >= k.interval {
		k.checked = now
		if mods, err := modTimes(k.certFile, k.keyFile); err == nil && mods != k.modTimes {
			if err := k.load(); err != nil {
				k.log.Warn("cannot reload TLS certificate; keeping the previous one", "cert_file", k.certFile, "err", err)
			}
		}
	}
	return k.cert
}

func modTimes(files ...string) ([2]time.Time, error) {
	var out [2]time.Time
	for i, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return out, err
		}
		out[i] = fi.ModTime()
	}
	return out, nil
}

func loadCertPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("cannot read CA bundle %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// ServerTLS returns the TLS configuration of the collector's listener (collector.http.tls), or
// nil for plain HTTP. The tap serves with it, and so does the listener that serves event ingest
// alone when there are no upstreams. The certificate is re-read when its files change; log gets
// the warning when that fails.
func ServerTLS(c ListenerTLS, log *slog.Logger) (*tls.Config, error) {
	if c.CertFile == "" {
		return nil, nil
	}
	kp, err := loadKeyPair(c.CertFile, c.KeyFile, log)
	if err != nil {
		return nil, fmt.Errorf("collector.http.tls: %w", err)
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get(), nil },
	}
	if c.ClientCAFile != "" {
		if cfg.ClientCAs, err = loadCertPool(c.ClientCAFile); err != nil {
			return nil, fmt.Errorf("collector.http.tls.client_ca_file: %w", err)
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		if c.ClientAuth == ClientAuthVerifyIfGiven {
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	return cfg, nil
}

// upstreamTLS returns the TLS client configuration for an upstream, or nil for the defaults.
func upstreamTLS(c UpstreamTLS, field string, log *slog.Logger) (*tls.Config, error) {
	if c.isZero() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pool, err := loadCertPool(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", field, err)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		kp, err := loadKeyPair(c.CertFile, c.KeyFile, log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert := kp.get(); cert != nil {
				return cert, nil
			}
			return nil, errors.New("no client certificate")
		}
	}
	return cfg, nil
}
