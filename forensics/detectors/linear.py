"""Shared machinery of the frequency-domain detectors: a fixed, training-free feature map followed by a
standardiser and a linear classifier (logistic regression or a linear SVM with Platt scaling).

scikit-learn fits the head; the fitted head is kept only as arrays (`scaler_mean_`, `scaler_scale_`, `coef_`,
`intercept_`, `platt_`) and scored in numpy, so a saved and reloaded detector gives bit-identical scores
and nothing is pickled.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from forensics.detectors.base import Detector

CLASSIFIERS = ("logreg", "svm")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(x)


class LinearFeatureDetector(Detector):
    """Subclasses define `__init__` (their hyperparameters, including `classifier`, `C`, `augment`,
    `target_fpr`, `seed`) and `features(images) -> [N,F] float32`.

    `augment` names a training preset of `forensics.augment` (e.g. "postproc"): each training image is then
    seen twice, as is and once through the preset, whatever its label, so both classes share one processing
    history and the linear head cannot separate them by how they were processed."""

    classifier: str
    C: float
    augment: str
    seed: int

    def _augmented(self, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from forensics.augment import apply_training_transform, training_transform

        transform = training_transform(self.augment, seed=self.seed)
        if transform is None:
            return images, labels
        extra = apply_training_transform(transform, images)
        return np.concatenate([images, extra]), np.concatenate([labels, labels])

    def features(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _check_classifier(self) -> None:
        if self.classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {self.classifier!r}")

    def _fit(self, images, labels, val_images, val_labels) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import LinearSVC

        self._check_classifier()
        images, labels = self._augmented(images, labels)
        x = self.features(images).astype(np.float64)  # [N,F]
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale < 1e-12] = 1.0  # constant features carry no signal; keep them at zero
        z = (x - mean) / scale
        if self.classifier == "logreg":
            clf = LogisticRegression(C=self.C, class_weight="balanced", max_iter=5000, random_state=self.seed)
            clf.fit(z, labels)
            platt = np.array([1.0, 0.0])
        else:
            clf = LinearSVC(C=self.C, class_weight="balanced", max_iter=20000, random_state=self.seed)
            clf.fit(z, labels)
            # Platt scaling turns margins into probabilities; fit it on held-out data when there is some.
            if val_images is not None and len(np.unique(val_labels)) == 2:
                zp = (self.features(val_images).astype(np.float64) - mean) / scale
                yp = val_labels
            else:
                zp, yp = z, labels
            margins = zp @ clf.coef_[0] + clf.intercept_[0]
            lr = LogisticRegression(C=1e4, max_iter=1000).fit(margins[:, None], yp)
            platt = np.array([lr.coef_[0, 0], lr.intercept_[0]])
        self.scaler_mean_ = mean
        self.scaler_scale_ = scale
        self.coef_ = np.asarray(clf.coef_[0], dtype=np.float64)  # [F]
        self.intercept_ = np.asarray([clf.intercept_[0]], dtype=np.float64)
        self.platt_ = platt.astype(np.float64)  # (a, b): P = sigmoid(a * margin + b)
        self.n_features_in_ = int(x.shape[1])

    def decision_function(self, images: np.ndarray) -> np.ndarray:
        """Linear margin before the sigmoid.  # [N,H,W,3] -> [N]"""
        x = self.features(self._prepare(images)).astype(np.float64)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(f"{x.shape[1]} features, detector was fitted on {self.n_features_in_}")
        z = (x - self.scaler_mean_) / self.scaler_scale_
        return z @ self.coef_ + self.intercept_[0]

    def _predict_proba(self, images: np.ndarray) -> np.ndarray:
        margin = self.decision_function(images)
        return _sigmoid(self.platt_[0] * margin + self.platt_[1])

    # ------------------------------------------------------------------ restore
    def _check_checkpoint(self, extra: dict[str, np.ndarray], source: Path) -> None:
        """The head's arrays must have the length the config's feature map gives at the fitted image size (one
        blank image through `features`: a config that lies about n_bins or channels is caught here)."""
        from forensics.modelfiles import CheckpointError, check_standardised_head

        super()._check_checkpoint(extra, source)
        try:
            self._check_classifier()
            h, w = self.image_size_
            n_features = int(self.features(np.zeros((1, h, w, 3), np.uint8)).shape[1])
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{source.parent / 'config.json'}: bad hyperparameters ({exc})") from None
        if self.__dict__.get("n_features_in_") != n_features:
            raise CheckpointError(f"{source.parent / 'config.json'}: n_features_in_ is "
                                  f"{self.__dict__.get('n_features_in_')!r} but the {self.name} features at "
                                  f"{h}x{w} have {n_features}")
        check_standardised_head(source, vars(self), n_features, self.name, extra, {"attr.platt_": (2,)})
