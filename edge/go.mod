module varco.dev/edge

go 1.26

require varco.dev/protocol v0.0.0

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/jonboulle/clockwork v0.5.0 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	periph.io/x/conn/v3 v3.7.3 // indirect
	periph.io/x/host/v3 v3.8.5 // indirect
)

replace varco.dev/protocol => ../protocol
