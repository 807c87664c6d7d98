"""The analyst's scan: files in, a calibrated and defensible report out (`forensics scan`).

One module per step, in the order a file goes through them:

    discover     paths, folders and globs -> files, each with its kind read from the bytes
    integrity    sha256 before and after, file state, the chain-of-custody block
    decode       videos by content (images: `forensics.data.media.read_image_by_content`)
    faces        MTCNN on images; on videos keyframes + tracker, faces linked into tracks; alignment
    quality      face size, sharpness, JPEG quality from the quantization tables
    temporal     flicker segments per track and the bundle's video model (temporal and video scores)
    verdict      per face / track / file verdicts that can abstain, with the reasons
    assets       thumbnails with face boxes, face crops, the video timeline (PNG/JPEG beside the report)
    results      one JSONL line per finished file, appended with fsync; what `--resume` reads
    schema       scan.json's versioned JSON Schema and its validation
    outputs      scan.json and summary.csv
    report_html  one self-contained HTML file
    pipeline     the orchestration, resumable and sharded under torchrun
"""
