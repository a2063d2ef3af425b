package eventlog

// DefaultLogPath is where systemd keeps the userspace measurement log.
const DefaultLogPath = "/run/log/systemd/tpm2-measure.log"

// PathEnv is the environment variable with which systemd (and we) override
// DefaultLogPath.
const PathEnv = "SYSTEMD_MEASURE_LOG_USERSPACE"

// DefaultPath returns the log path: getenv(PathEnv) if it is not empty, else
// DefaultLogPath. Pass os.Getenv; tests pass their own function.
func DefaultPath(getenv func(string) string) string {
	if getenv != nil {
		if p := getenv(PathEnv); p != "" {
			return p
		}
	}
	return DefaultLogPath
}
