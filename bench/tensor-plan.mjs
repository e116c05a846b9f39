// The tensor scenario's plan (tensor-plan.json), shared by our side, the report and the floors.

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));

export const PLAN = JSON.parse(readFileSync(join(HERE, "tensor-plan.json"), "utf8"));

/** Sizes that the forwarding scenario runs, in plan order. */
export const FORWARD_SIZES = PLAN.sizes.filter((size) => PLAN.forward.sizes.includes(size.label));

export const roundTripKey = (framework, label) => `tensor_rt_${framework}_${label}_median_us`;
export const forwardKey = (label) => `tensor_fwd_${PLAN.forward.framework}_${label}_median_us`;
