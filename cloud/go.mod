module varco.dev/cloud

go 1.26

require varco.dev/protocol v0.0.0

replace varco.dev/protocol => ../protocol
