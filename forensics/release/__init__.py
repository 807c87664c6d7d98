"""The release recipe (`forensics detect release`): the default scan bundle trained on the whole starter corpus at
face resolution, calibrated on leave-identity-out scores, with an out-of-distribution guard.

    dataset.py    the 128 px release dataset: every real crop, every zoo member, blends and swaps on full frames
    folds.py      identity folds (one per large identity; test people held out)
    train.py      fold models and out-of-fold scores; the final models per seed; resumable
    calibrate.py  calibration, the worst-identity band, fusion only where it wins
    measure.py    leave-one-identity-out decisions, test AUC per generator, ECE, seed spread
    card.py       the model card written from those figures
    pipeline.py   the stages in order
"""
