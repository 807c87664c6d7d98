"""deepfake-forensics: detectors, metrics, reports and the data layer shared with the generator zoo."""

__version__ = "0.1.0"
