// A subpath of its own (`@aigw/core/guardrails`): the detectors it loads (libphonenumber-js's
// numbering plans) cost memory and start-up time that a gateway without guardrails never pays.
export {
  createGuardrails,
  type GuardrailOptions,
  guardrailCheckHeader,
} from "./guardrails/index.js";
export type {
  ContentRule,
  CustomCheck,
  GuardrailPhase,
  GuardrailPolicy,
  PiiEntityAction,
  PiiPolicy,
} from "./guardrails/policy.js";
