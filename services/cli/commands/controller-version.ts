import { EXIT } from '../../shared/program';
import type { Command } from '../command';
import { shown } from '../format';
import { json } from '../io';

/** `controller version`: the controller's app version. */
export const controllerVersion: Command<void> = async ({ session, io, opts }) => {
  const r = await session.controllerCommand(
    'ControllerAppVersionV1Req',
    {},
    'ControllerAppVersionV1Reply',
  );
  if (!r.ok) {
    io.err(`controller version: ${shown(r.problem)}\n`);
    return EXIT.FAILED;
  }
  io.out(
    opts.json
      ? json({ controllerAppVersion: r.reply.controllerAppVersion })
      : `${shown(r.reply.controllerAppVersion)}\n`,
  );
  return EXIT.OK;
};
