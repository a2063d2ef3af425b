package loader

import "os"

// OpenInput opens path for reading with the checks the loader makes of its
// inputs: a regular file, refused without being opened otherwise (a FIFO
// would block), checked again on the open descriptor; the size is the
// descriptor's. Errors are *InputError naming the path. `inspect` opens
// its images with it. Outside Linux it returns errors.ErrUnsupported.
func OpenInput(path string) (*os.File, int64, error) { return openInput(path) }
