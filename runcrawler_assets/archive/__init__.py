"""Reading the archive: discovery (walk and fingerprint, no contents) and the JSON run store."""
