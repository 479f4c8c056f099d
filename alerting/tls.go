package alerting

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/mcpwatch/mcpwatch/internal/config"
)

// ClientTLS is a sink's TLS client configuration: which CAs to trust for the receiver's
// certificate and, for mutual TLS, the client certificate to present. Any sink that speaks
// TLS (webhook, Splunk HEC, syslog over TLS) embeds it under a "tls" key.
type ClientTLS struct {
	// CAFile is a PEM bundle of the CAs trusted for the receiver's certificate (default: the
	// system roots).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the PEM client certificate (chain) and key presented when the
	// receiver asks for one (mutual TLS). Both or neither. They are read again at every new
	// connection, so a rotated certificate is picked up without a restart.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the host name checked against the receiver's certificate (default:
	// the host of the URL or address).
	ServerName string `yaml:"server_name"`
}

// validate records problems with the TLS block at path (e.g. "alerting.webhooks[0].tls").
func (t ClientTLS) validate(p string, errs *config.Errors) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs.Add(p, "cert_file and key_file go together: set both for mutual TLS, or neither")
	}
}

// Config returns a tls.Config for a client of the receiver: TLS 1.2 or later, the CAs of
// CAFile (or the system roots), and the client certificate when one is configured. Files are
// checked now, so a typo fails at start rather than at the first alert.
func (t ClientTLS) Config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s holds no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			return nil, fmt.Errorf("cannot load tls.cert_file and tls.key_file: %w", err)
		}
		certFile, keyFile := t.CertFile, t.KeyFile
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, fmt.Errorf("cannot load client certificate: %w", err)
			}
			return &cert, nil
		}
	}
	return c, nil
}
