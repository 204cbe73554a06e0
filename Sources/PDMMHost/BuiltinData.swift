import CDigits
import PDMMEngine

/// The built-in digits data set (compiled into the binary).
public enum BuiltinData {
    /// 1797 samples, 64 features (0...16 as Q16.16), 10 classes.
    public static func digits() -> Dataset {
        do {
            return try Dataset(bytes: pdmm_digits_features_ptr(), labels: pdmm_digits_labels_ptr(),
                               count: Int(PDMM_DIGITS_SAMPLES), featureCount: Int(PDMM_DIGITS_FEATURES),
                               classes: Int(PDMM_DIGITS_CLASSES))
        } catch {
            fatalError("built-in data set is invalid: \(error.message)")
        }
    }
}
