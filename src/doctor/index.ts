// The doctor's public surface (`pyisolate doctor`): it may depend on every other folder, and none depends on it.

export { buildDoctorReport, runDoctor, type DoctorGap, type DoctorReport } from "./report.js";
export { formatDoctorJson, formatDoctorText } from "./format.js";
export { checkRayCluster, formatRayReport, type RayDoctorReport } from "./ray.js";
