module github.com/kexec-measured/kexec-measured

go 1.26.8

require (
	github.com/google/go-attestation v0.6.4
	github.com/google/go-tpm v0.9.8
	github.com/klauspost/compress v1.20.4
	github.com/pierrec/lz4/v4 v4.1.33
	github.com/ulikunitz/xz v0.5.17
	golang.org/x/sys v0.50.0
)

require github.com/google/go-tpm-tools v0.4.11 // indirect
