package loader

import (
	"errors"
	"fmt"
)

// ErrHandoffTooLarge reports a handoff component that does not fit in the
// memory left for the load.
var ErrHandoffTooLarge = errors.New("loader: the handoff does not fit in the memory left")

// appendHandoff writes the handoff component data at align4(InitrdSize),
// after the measured bytes (the zero padding first), and makes it part of
// the initrd. Nothing is written below the measured end. avail is the
// memory left (MemAvailable), -1 when unknown: the kernel copies the
// kernel and the whole initrd, so a handoff that makes them exceed avail,
// when they fit without it, gives ErrHandoffTooLarge and the load stops
// with nothing loaded.
func (im *Image) appendHandoff(data []byte, avail int64) error {
	off := align4(im.InitrdSize)
	need := im.Kernel.Size + off + int64(len(data))
	if avail >= 0 && need > avail && im.Kernel.Size+im.InitrdSize <= avail {
		return fmt.Errorf("%w: a handoff of %d bytes makes the load %d bytes, and only %d bytes of memory are available (MemAvailable); nothing was loaded: free memory, or load with --no-handoff", ErrHandoffTooLarge, len(data), need, avail)
	}
	buf := make([]byte, off-im.InitrdSize, off-im.InitrdSize+int64(len(data)))
	buf = append(buf, data...)
	if _, err := im.initrd.WriteAt(buf, im.InitrdSize); err != nil {
		return fmt.Errorf("appending the handoff (%d bytes) to the initrd memfd: %w", len(data), err)
	}
	im.Handoff = &Component{Path: "handoff", Offset: off, Size: int64(len(data))}
	im.InitrdSize = off + int64(len(data))
	return nil
}
