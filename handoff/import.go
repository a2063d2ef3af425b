package handoff

// ImportResult says what Import did.
type ImportResult struct {
	// Records and Bytes are the handed-over log's size.
	Records, Bytes int
	// Already is true when the log already started with the handed-over
	// records: nothing was written.
	Already bool
	// Firmware is the path the firmware log copy was written to, "" when
	// the handoff carried none.
	Firmware string
}
