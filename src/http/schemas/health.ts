import { Type } from '../../typebox.ts';
import { ErrorRef } from './common.ts';

export const healthRoute = {
  summary: 'Liveness: the process answers',
  tags: ['ops'],
  response: { 200: Type.Object({ status: Type.Literal('ok') }) },
};

export const ReadinessSchema = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not ready')]),
  model: Type.Union([Type.String(), Type.Null()]),
  provider: Type.Union([Type.String(), Type.Null()]),
  items: Type.Integer(),
  vectors: Type.Integer(),
});

export const readyRoute = {
  summary: 'Readiness: stores open and model loaded',
  tags: ['ops'],
  response: { 200: ReadinessSchema, 503: Type.Union([ReadinessSchema, ErrorRef]) },
};
