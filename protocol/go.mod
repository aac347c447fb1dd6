module varco.dev/protocol

go 1.26
