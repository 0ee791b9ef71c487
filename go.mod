module github.com/rcbridge/rcbridge

go 1.26.8

require github.com/gopcua/opcua v0.8.0

require go.uber.org/goleak v1.3.0 // indirect
