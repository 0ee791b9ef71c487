package mqttbus

import (
	"crypto/tls"
	"testing"

	"github.com/mochi-mqtt/server/v2/hooks/auth"

	"github.com/rcbridge/rcbridge/bridge/mqttbus/mqtttest"
)

// startBroker starts a restartable embedded broker, stopped at test cleanup.
func startBroker(tb testing.TB) *mqtttest.Broker { return startBrokerWith(tb, nil, nil) }

// startBrokerWith starts a broker with a TLS listener and/or an
// authentication ledger.
func startBrokerWith(tb testing.TB, tlsCfg *tls.Config, ledger *auth.Ledger) *mqtttest.Broker {
	tb.Helper()
	return mqtttest.StartBroker(tb, mqtttest.BrokerOptions{TLS: tlsCfg, Ledger: ledger})
}
