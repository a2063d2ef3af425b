// Command mktree writes the file trees of a distro-like initramfs for
// bench/segments.sh: an early tree with CPU microcode and dracut's
// early_cpio marker, and a main tree of many small, fairly compressible
// files (modules, libraries, scripts) and some large incompressible ones
// (firmware), sized so that the compressed main archive is about -mb MiB.
// The content is pseudo-random from a fixed seed: every run writes the same
// bytes.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	out := flag.String("out", "", "directory to create the early/ and main/ trees in")
	mb := flag.Int("mb", 130, "approximate compressed size of the main archive, MiB")
	small := flag.Int("small", 8000, "number of small files")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "mktree: -out is required")
		os.Exit(2)
	}
	if err := run(*out, *mb, *small); err != nil {
		fmt.Fprintf(os.Stderr, "mktree: %v\n", err)
		os.Exit(1)
	}
}

func run(out string, mb, small int) error {
	rng := rand.New(rand.NewPCG(7, 11))
	write := func(path string, data []byte) error {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		return os.WriteFile(path, data, 0o644)
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	words := strings.Fields("module init exit probe remove device driver kernel alloc free lock unlock read write irq dma pci usb net block fs ext4 xfs btrfs nvme ahci scsi crypto sha256 aes gcm tpm efi acpi")
	text := func(n int) []byte {
		var b strings.Builder
		for b.Len() < n {
			b.WriteString(words[rng.IntN(len(words))])
			if rng.IntN(8) == 0 {
				fmt.Fprintf(&b, "_%x", rng.Uint32())
			}
			b.WriteByte(" \n"[rng.IntN(2)])
		}
		return []byte(b.String()[:n])
	}

	early := filepath.Join(out, "early")
	if err := write(filepath.Join(early, "early_cpio"), []byte("1\n")); err != nil {
		return err
	}
	for name, size := range map[string]int{"GenuineIntel.bin": 3 << 20, "AuthenticAMD.bin": 200 << 10} {
		if err := write(filepath.Join(early, "kernel/x86/microcode", name), random(size)); err != nil {
			return err
		}
	}

	main := filepath.Join(out, "main")
	dirs := []string{"usr/lib/modules/6.1.0-amd64/kernel/drivers/net", "usr/lib/modules/6.1.0-amd64/kernel/drivers/gpu",
		"usr/lib/modules/6.1.0-amd64/kernel/fs", "usr/lib/modules/6.1.0-amd64/kernel/crypto", "usr/lib/x86_64-linux-gnu",
		"usr/bin", "usr/sbin", "scripts/local-top", "etc/udev/rules.d"}
	// Small files: text with some random bytes mixed in, 1-24 KiB.
	var smallBytes int
	for i := 0; i < small; i++ {
		n := 1<<10 + rng.IntN(23<<10)
		data := text(n)
		copy(data[n/2:], random(n/4))
		dir := dirs[i%len(dirs)]
		if err := write(filepath.Join(main, dir, fmt.Sprintf("f%05d.ko", i)), data); err != nil {
			return err
		}
		smallBytes += n
	}
	for i, d := range []string{"bin", "sbin", "lib", "lib64"} {
		if err := os.Symlink("usr/"+d, filepath.Join(main, d)); err != nil && i < 2 {
			return err
		}
	}
	if err := write(filepath.Join(main, "init"), []byte("#!/bin/sh\nexec /sbin/init\n")); err != nil {
		return err
	}
	// Large files: incompressible firmware blobs, 2-8 MiB, up to the target.
	left := mb<<20 - smallBytes*3/5
	for i := 0; left > 0; i++ {
		n := min(left, 2<<20+rng.IntN(6<<20))
		if err := write(filepath.Join(main, "usr/lib/firmware", fmt.Sprintf("blob%03d.bin", i)), random(n)); err != nil {
			return err
		}
		left -= n
	}
	return nil
}
