// Package integration holds end-to-end tests against external peers
// (node-opcua, mosquitto). They carry the build tag "integration" and run
// with `make test-integration`.
package integration
