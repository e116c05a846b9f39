// The version of this package and of the Python guest runtime it ships (they move together).

export const RUNTIME_VERSION = "0.1.0";
