// Package identitytest makes real credentials for tests: a certificate authority issuing
// server and client certificates (with SPIFFE IDs), and signing keys for JWTs with their JWKS.
package identitytest
