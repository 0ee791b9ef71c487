module github.com/rcbridge/rcbridge

go 1.26.8

require (
	github.com/gopcua/opcua v0.8.0
	go.uber.org/goleak v1.3.0
)

require github.com/google/uuid v1.6.0 // indirect
