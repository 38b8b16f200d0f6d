package toolkit.deploy;

/** An exported model cannot be used: missing or corrupt files, metadata that does not match the graph, or bad input. */
public class ModelException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public ModelException(String message) {
    super(message);
  }

  public ModelException(String message, Throwable cause) {
    super(message, cause);
  }
}
